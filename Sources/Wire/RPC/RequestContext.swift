/// What the work running now serves, as its log lines name it: the request's
/// correlation id and its W3C trace. The Wire server binds it for each
/// handler from the call's metadata (`x-correlation-id`, `traceparent`);
/// work that outlives its call (a merge, a queued diff, a cleanup chain)
/// binds it again from what it kept with the work. `JSONLine.event` writes
/// both next to each other.
public struct RequestContext: Sendable, Equatable {
    public static let correlationHeader = "x-correlation-id"

    public var correlationID: String?
    public var trace: TraceContext?

    public init(correlationID: String? = nil, trace: TraceContext? = nil) {
        self.correlationID = correlationID.flatMap { $0.isEmpty ? nil : $0 }
        self.trace = trace
    }

    /// The context kept as text (a stored traceparent, possibly empty or invalid).
    public init(correlationID: String?, traceparent: String?) {
        self.init(correlationID: correlationID, trace: traceparent.flatMap(TraceContext.init(traceparent:)))
    }

    /// The context a call's metadata names.
    public init(_ metadata: Metadata) {
        self.init(correlationID: metadata[Self.correlationHeader], traceparent: metadata[TraceContext.header])
    }

    public var isEmpty: Bool { correlationID == nil && trace == nil }

    /// What an onward call made for this request carries: its correlation id,
    /// and a child span of its trace.
    public func propagate(into metadata: inout Metadata) {
        if let correlationID { metadata.set(Self.correlationHeader, correlationID) }
        if let trace { metadata.set(TraceContext.header, trace.child().traceparent) }
    }

    @TaskLocal public static var current = RequestContext()

    /// Runs `body` with this context as `current`.
    public func run<T>(_ body: () async throws -> T) async rethrows -> T {
        try await Self.$current.withValue(self, operation: body)
    }

    /// Runs `body` (synchronous) with this context as `current`.
    public func run<T>(_ body: () throws -> T) rethrows -> T {
        try Self.$current.withValue(self, operation: body)
    }
}
