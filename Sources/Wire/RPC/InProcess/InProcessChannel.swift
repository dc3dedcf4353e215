/// Calls services in the same process, with no sockets: each call's
/// messages travel through in-memory streams and its handler runs as a
/// child task. Semantics match a real transport: unknown methods are
/// UNIMPLEMENTED, handler errors become the call's status, a passed deadline
/// cancels the handler and fails the call with DEADLINE_EXCEEDED.
public struct InProcessChannel: RPCChannel {
    private let handlers: [String: RPCHandler]

    public init(services: [any RPCService]) {
        var table: [String: RPCHandler] = [:]
        for service in services { for h in service.rpcHandlers { table[h.method.path] = h } }
        handlers = table
    }

    public func withCall<Result: Sendable>(
        _ method: MethodDescriptor, options: CallOptions,
        _ body: @Sendable (any RawClientCall) async throws -> Result
    ) async throws -> Result {
        let (requests, requestSink) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let (responses, responseSink) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let response = ResponseMetadata()
        let call = InProcessCall(requestSink: requestSink, responses: MessageSource(responses), response: response)
        guard let handler = handlers[method.path] else {
            responseSink.finish(throwing: RPCError(.unimplemented, "method \(method.path) is not implemented"))
            return try await body(call)
        }
        let context = ServerContext(
            method: method, metadata: options.metadata, deadline: options.deadline, peer: "in-process", response: response)
        let serverCall = RawServerCall(
            context: context,
            nextRequest: MessageSource(requests).next,
            sendResponse: { responseSink.yield($0) })

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Self.runHandler(handler, serverCall, deadline: options.deadline)
                    responseSink.finish()
                } catch {
                    responseSink.finish(throwing: RPCError.from(error))
                }
            }
            defer { group.cancelAll() }
            return try await body(call)
        }
    }

    private static func runHandler(_ handler: RPCHandler, _ call: RawServerCall, deadline: ContinuousClock.Instant?) async throws {
        guard let deadline else { return try await handler.handle(call) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await handler.handle(call) }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                throw RPCError(.deadlineExceeded, "deadline exceeded")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }
}

private struct InProcessCall: RawClientCall {
    let requestSink: AsyncThrowingStream<[UInt8], any Error>.Continuation
    let responses: MessageSource
    let response: ResponseMetadata

    var responseHeaders: Metadata { response.headers }
    var responseTrailers: Metadata { response.trailers }

    func send(_ message: [UInt8]) async throws { requestSink.yield(message) }
    func finishSending() async throws { requestSink.finish() }
    func receive() async throws -> [UInt8]? { try await responses.next() }
}

/// Lets a `@Sendable` closure pull from a stream that has one consumer.
private final class MessageSource: @unchecked Sendable {
    // Safe: each call's stream is consumed by exactly one task at a time.
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator

    init(_ stream: AsyncThrowingStream<[UInt8], any Error>) { iterator = stream.makeAsyncIterator() }

    @Sendable func next() async throws -> [UInt8]? { try await iterator.next() }
}
