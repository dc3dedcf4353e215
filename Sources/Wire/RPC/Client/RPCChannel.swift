/// One open call as a client transport exposes it: send encoded requests,
/// half-close, receive encoded responses. `receive` returns nil when the
/// call ended with OK and throws `RPCError` when it ended otherwise.
public protocol RawClientCall: Sendable {
    func send(_ message: [UInt8]) async throws
    /// No more requests (half-close).
    func finishSending() async throws
    func receive() async throws -> [UInt8]?
    /// The server's response headers; complete once `receive` has returned or thrown once.
    var responseHeaders: Metadata { get }
    /// The server's trailers; complete once `receive` has returned nil or thrown.
    /// (A failed call's trailers are also in its `RPCError.metadata`.)
    var responseTrailers: Metadata { get }
}

/// Something that can carry calls to a server: a Wire connection pool, the
/// in-process channel used in tests, ...
public protocol RPCChannel: Sendable {
    /// Starts a call, runs `body` with it, and releases the call afterwards
    /// (cancelling it if `body` left it unfinished).
    func withCall<Result: Sendable>(
        _ method: MethodDescriptor, options: CallOptions,
        _ body: @Sendable (any RawClientCall) async throws -> Result
    ) async throws -> Result

    /// One request, one response, as encoded messages, with the response's
    /// headers and trailers. The default makes it with `withCall`; a
    /// transport with a cheaper path for unary calls provides its own.
    func unaryBytes(_ method: MethodDescriptor, _ request: [UInt8], options: CallOptions) async throws -> UnaryResponse

    /// Starts a unary call without a task: `completion` gets its outcome
    /// exactly once. For callers that live on an event loop (the gateway's
    /// HTTP/2 streams): a `WireChannel` calls `completion` on its loop thread
    /// (or, after `cancel`, on the cancelling thread); the default runs
    /// `unaryBytes` in a task and calls it from that task.
    @discardableResult
    func startUnary(
        _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions,
        completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void
    ) -> UnaryCallHandle
}

/// A channel that holds connections until closed.
public protocol ClosableChannel: RPCChannel {
    /// Closes its connections; later calls fail with UNAVAILABLE.
    func close()
}

/// A started call as a transport cancels it (ending it with CANCELLED).
protocol CallCancelling: AnyObject, Sendable {
    func cancel()
}

/// A unary call started with `startUnary`; `cancel` ends it with CANCELLED
/// (the completion still runs, once).
public struct UnaryCallHandle: Sendable {
    enum Call: Sendable {
        /// A transport's own call object.
        case cancellable(any CallCancelling)
        case task(Task<Void, Never>)
        case ended
    }

    let call: Call

    /// `unary` run in a task (preferring `executor`), its outcome handed to `completion`.
    static func inTask(
        preferring executor: (any TaskExecutor)? = nil, _ completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void,
        _ unary: @escaping @Sendable () async throws -> UnaryResponse
    ) -> UnaryCallHandle {
        UnaryCallHandle(call: .task(Task(executorPreference: executor) {
            do {
                completion(.success(try await unary()))
            } catch {
                completion(.failure(RPCError.from(error)))
            }
        }))
    }

    public func cancel() {
        switch call {
        case .cancellable(let c): c.cancel()
        case .task(let t): t.cancel()
        case .ended: break
        }
    }
}

/// What a unary call returns: the response message and the metadata around it.
public struct UnaryResponse: Sendable {
    public var headers: Metadata
    public var message: [UInt8]
    public var trailers: Metadata

    public init(headers: Metadata, message: [UInt8], trailers: Metadata) {
        self.headers = headers
        self.message = message
        self.trailers = trailers
    }
}

extension RPCChannel {
    @discardableResult
    public func startUnary(
        _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions,
        completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void
    ) -> UnaryCallHandle {
        .inTask(completion) { try await unaryBytes(method, request, options: options) }
    }

    public func unaryBytes(_ method: MethodDescriptor, _ request: [UInt8], options: CallOptions) async throws -> UnaryResponse {
        try await withCall(method, options: options) { call in
            try await call.send(request)
            try await call.finishSending()
            let message = try await Self.singleResponse(call, method)
            return UnaryResponse(headers: call.responseHeaders, message: message, trailers: call.responseTrailers)
        }
    }
}

// The four call kinds, typed. Generated client stubs call these.
extension RPCChannel {
    @inlinable
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor, _ request: Request, options: CallOptions
    ) async throws -> Response {
        try RPCCodec.decode(Response.self, try await unaryBytes(method, request.serializedBytes(), options: options).message, failure: .internal)
    }

    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor, _ request: Request, options: CallOptions,
        onResponse: @Sendable (Response) async throws -> Void
    ) async throws {
        try await withCall(method, options: options) { call in
            try await call.send(request.serializedBytes())
            try await call.finishSending()
            while let bytes = try await call.receive() {
                try await onResponse(try RPCCodec.decode(Response.self, bytes, failure: .internal))
            }
        }
    }

    public func clientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor, options: CallOptions,
        requests: @Sendable (RPCWriter<Request>) async throws -> Void
    ) async throws -> Response {
        try await withCall(method, options: options) { call in
            try await requests(RPCWriter(sendBytes: { try await call.send($0) }))
            try await call.finishSending()
            return try RPCCodec.decode(Response.self, try await Self.singleResponse(call, method), failure: .internal)
        }
    }

    /// Requests are produced concurrently with responses being consumed.
    public func bidirectionalStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor, options: CallOptions,
        requests: @escaping @Sendable (RPCWriter<Request>) async throws -> Void,
        onResponse: @Sendable (Response) async throws -> Void
    ) async throws {
        try await withCall(method, options: options) { call in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await requests(RPCWriter(sendBytes: { try await call.send($0) }))
                    try await call.finishSending()
                }
                while let bytes = try await call.receive() {
                    try await onResponse(try RPCCodec.decode(Response.self, bytes, failure: .internal))
                }
                try await group.waitForAll()
            }
        }
    }

    fileprivate static func singleResponse(_ call: any RawClientCall, _ method: MethodDescriptor) async throws -> [UInt8] {
        guard let bytes = try await call.receive() else {
            throw RPCError(.internal, "\(method) ended with OK but sent no response message")
        }
        guard try await call.receive() == nil else {
            throw RPCError(.internal, "\(method) sent more than one response message")
        }
        return bytes
    }
}
