import Wire

/// Who made a change: the caller's principal (as the gateway forwards it,
/// or `service` for a Wire peer acting for itself), correlation id, and the
/// W3C traceparent of the call (kept with the work, so the hops after it, an
/// outbox delivery or a worker, continue the same trace).
public struct ChangeActor: Sendable, Equatable {
    public var principal: String
    public var correlationID: String
    public var traceparent: String

    public static let service = ChangeActor(principal: "service", correlationID: "")

    public init(principal: String, correlationID: String, traceparent: String = "") {
        self.principal = principal
        self.correlationID = correlationID
        self.traceparent = traceparent
    }

    public init(_ context: ServerContext) {
        principal = ForwardedCaller(context.metadata).author
        let request = RequestContext.current  // the call's, bound by the Wire server
        correlationID = request.correlationID ?? ""
        traceparent = request.trace?.traceparent ?? ""
    }

    /// The request the change came with: the work that follows it runs under it.
    public var request: RequestContext { RequestContext(correlationID: correlationID, traceparent: traceparent) }
}

/// An async cleanup operation on the Games side:
/// RECEIVED → IN_PROGRESS → DEFERRED (archived, awaiting purge) → PROCESSED,
/// or FAILED with the reason.
public struct CleanupOperation: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case received = "RECEIVED", inProgress = "IN_PROGRESS", deferred = "DEFERRED", processed = "PROCESSED", failed = "FAILED" }
    public enum Action: String, Sendable { case delete = "DELETE", archive = "ARCHIVE" }

    public var operationID: String
    public var requestID: String
    public var action: Action
    public var status: Status
    public var archivedAtMillis: Int64
    public var requestedIDs: [Int64]
    public var affectedIDs: [Int64]
    public var missingIDs: [Int64]
    public var failure: String
    public var purgeFailures: [String]
    public var purged: Int
    public var createdAtMillis: Int64
    public var updatedAtMillis: Int64
    public var runID = ""
    /// Who asked for it; its version rows name them.
    public var actor = ChangeActor.service

    /// DEFERRED, PROCESSED or FAILED: the worker is done with it.
    public var isFinal: Bool { status == .deferred || status == .processed || status == .failed }

    /// Most ids one request may name (enforced on both sides).
    public static let maxIDs = 500

    /// What a cleanup request must satisfy before anything is stored.
    public static func validate(requestID: String, ids: [Int64], archivedAtMillis: Int64) throws {
        guard !requestID.isEmpty, requestID.utf8.count <= 200 else {
            throw RPCError(.invalidArgument, "request_id is required (at most 200 bytes)")
        }
        guard !ids.isEmpty else { throw RPCError(.invalidArgument, "ids must name at least one table") }
        guard ids.count <= maxIDs else {
            throw RPCError(.invalidArgument, "at most \(maxIDs) ids per request (got \(ids.count))")
        }
        guard ids.allSatisfy({ $0 > 0 }) else { throw RPCError(.invalidArgument, "table ids must be positive") }
        guard Set(ids).count == ids.count else { throw RPCError(.invalidArgument, "ids must not repeat") }
        guard archivedAtMillis > 0 else { throw RPCError(.invalidArgument, "archived_at_ms must be positive") }
    }
}
