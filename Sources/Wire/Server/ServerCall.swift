import Synchronization

/// One call on a server connection: what every call kind shares. Exactly one
/// TRAILERS (or none, after a CANCEL) ends it: `finish` is first-wins between
/// the handler, the deadline timer and cancellation.
///
/// The connection's reader delivers the call's frames through the
/// `received…` methods (loop thread); `runHandler` runs the handler (a unary
/// body from `takeUnary`, any other kind's `run`), and the connection's
/// `HandlerStarter` calls it right after the read that made it due,
/// so a handler that does not suspend completes inside that read.
///
/// The call is also its handler's `ServerContext`: one object per call.
class ServerCall: ServerContext, @unchecked Sendable {
    // @unchecked: every mutable field is behind `life`; subclasses keep their own state Sendable.
    private struct Life {
        var finished = false
        /// A single-response call's response, held back to leave with the TRAILERS in one write.
        var pendingResponse: [UInt8]?
        var task: Task<Void, Never>?
        var timer: LoopTimer?
        /// The handler has returned or thrown: its task needs no cancelling.
        var handlerDone = false
    }

    let id: UInt32
    let connection: ServerConnection
    /// The largest response message the peer accepts (its SETTINGS frame size).
    let maxMessageBytes: Int
    private let life = Mutex(Life())

    /// Arguments one by one, not in a struct: initializers take them owned,
    /// so they move into the call with no reference counting.
    init(id: UInt32, method: MethodDescriptor, metadata: Metadata, deadline: Int64?, connection: ServerConnection) {
        self.id = id
        self.connection = connection
        maxMessageBytes = connection.peerMaxMessage
        super.init(method: method, metadata: metadata, deadline: deadline.map(LoopClock.instant), peer: connection.peerDescription)
    }

    // MARK: Frames from the peer (loop thread)

    /// A request message; false if it overruns the stream's flow-control window.
    func received(message: [UInt8]) -> Bool { true }
    /// The client half-closed.
    func receivedEnd() {}
    /// WINDOW_UPDATE for this stream.
    func received(credit: Int) {}

    // MARK: Handler

    /// The handler's work; returning is status OK.
    func run() async throws {}

    /// A unary call's request and handler body, taken when its handler starts;
    /// nil for the other kinds, which `run`.
    func takeUnary() throws -> (request: [UInt8], body: @Sendable ([UInt8], ServerContext) async throws -> [UInt8])? { nil }

    /// Runs the handler and ends the call with its outcome. `HandlerStarter`
    /// calls it on the loop, inside a task that may run other handlers too.
    ///
    /// A unary body is awaited here, not through `run`: each `await` that
    /// returns switches executors once more (see docs/wire-runtime.md), and
    /// a unary call is the hot path.
    final func runHandler() async {
        // Under the call's correlation id and trace (W3C traceparent) when it carries them, so the handler's log lines name them.
        let context = RequestContext(metadata)
        if context.isEmpty {
            await runHandlerBody()
        } else {
            await context.run { await runHandlerBody() }
        }
    }

    private func runHandlerBody() async {
        let status: RPCError?
        do {
            if let (request, body) = try takeUnary() {
                try hold(try await body(request, self))
            } else {
                try await run()
            }
            status = nil
        } catch {
            status = clientStatus(error)
        }
        life.withLock { l in
            l.handlerDone = true
            l.task = nil  // the task may go on to other work: it is no longer this call's to cancel
        }
        finish(status)
    }

    /// What the caller sees of a handler's error. An `RPCError` is the
    /// handler's chosen answer; cancellation is CANCELLED. Anything else (a
    /// storage failure, a bug) is INTERNAL with a plain message and the call's
    /// correlation id: its text (SQL, file paths) stays in this server's log.
    private func clientStatus(_ error: any Error) -> RPCError {
        if let e = error as? RPCError { return e }
        if error is CancellationError { return RPCError(.cancelled, "the call was cancelled") }
        let id = metadata[RequestContext.correlationHeader] ?? "none"
        let trace = TraceContext.current.map { ", trace id \($0.traceID)" } ?? ""
        connection.server.log("\(method.path) failed (correlation id \(id)\(trace)): \(error)")
        return RPCError(.internal, "\(method.path) failed inside the service; correlation id \(id)")
    }

    /// The handler suspended inside `task`: keep it, so cancellation and the
    /// deadline can reach the handler.
    final func adopt(_ task: Task<Void, Never>) {
        let cancelNow = life.withLock { l -> Bool in
            if l.handlerDone { return false }
            l.task = task
            return l.finished
        }
        if cancelNow { task.cancel() }
    }

    /// Ends the call with DEADLINE_EXCEEDED at `deadline`, whether or not its handler has started.
    final func startDeadlineTimer(atNanos deadline: Int64) {
        let timer = connection.loop.schedule(atNanos: deadline) { [self] in finish(RPCError(.deadlineExceeded, "deadline exceeded")) }
        let ended = life.withLock { l -> Bool in
            if !l.finished { l.timer = timer }
            return l.finished
        }
        if ended { connection.loop.cancel(timer) }
    }

    final var isFinished: Bool { life.withLock { $0.finished } }

    /// Checks a response message against the peer's limit.
    final func checkSize(_ bytes: [UInt8]) throws {
        guard bytes.count <= maxMessageBytes else {
            throw RPCError(.resourceExhausted, "a response message of \(bytes.count) bytes exceeds the peer's \(maxMessageBytes)-byte limit")
        }
    }

    /// Holds a single-response call's response until the status goes out.
    final func hold(_ response: [UInt8]) throws {
        try checkSize(response)
        let accepted = life.withLock { l -> Bool in
            guard !l.finished, l.pendingResponse == nil else { return false }
            l.pendingResponse = response
            return true
        }
        guard accepted else {
            if isFinished { throw CancellationError() }
            throw RPCError(.internal, "a single-response call sent a second response")
        }
    }

    /// Ends the call with `status` (nil = OK); false if it had already ended.
    @discardableResult
    final func finish(_ status: RPCError?) -> Bool {
        guard let (pending, task) = markFinished() else { return false }
        let response = responseIfUsed
        let headers = response?.takeHeadersToSend()
        var trailerMetadata = response?.trailers ?? Metadata()
        if let status { for e in status.metadata { trailerMetadata.append(e) } }
        connection.write { buffer in
            appendHeaders(headers, to: &buffer)
            if let pending, status == nil {
                Frame.appendHeader(type: .message, stream: id, length: pending.count, to: &buffer)
                buffer.append(contentsOf: pending)
            }
            Self.appendTrailers(status, metadata: trailerMetadata, stream: id, to: &buffer)
        }
        if status != nil { task?.cancel() }
        ended()
        return true
    }

    /// The client cancelled (or the connection closed): stop the handler, send nothing more.
    final func cancelByPeer() {
        guard let (_, task) = markFinished() else { return }
        task?.cancel()
        ended()
    }

    /// Marks the call finished, once (nil if it already was), and cancels its
    /// deadline timer; returns the held response and the handler's task.
    /// The call keeps no timer: the timer's action holds the call, and a
    /// timer kept after the end kept every call with a deadline alive.
    private func markFinished() -> (pending: [UInt8]?, task: Task<Void, Never>?)? {
        let taken = life.withLock { l -> (pending: [UInt8]?, task: Task<Void, Never>?, timer: LoopTimer?)? in
            guard !l.finished else { return nil }
            l.finished = true
            defer { (l.pendingResponse, l.timer) = (nil, nil) }
            return (l.pendingResponse, l.task, l.timer)
        }
        if let timer = taken?.timer { connection.loop.cancel(timer) }
        return taken.map { ($0.pending, $0.task) }
    }

    /// The TRAILERS frame ending stream `stream` with `status` (nil = OK).
    static func appendTrailers(
        _ status: RPCError?, metadata: Metadata, stream: UInt32, notProcessed: Bool = false, to buffer: inout [UInt8]
    ) {
        guard status != nil || !metadata.isEmpty else {
            return Frame.appendHeader(type: .trailers, stream: stream, length: 0, to: &buffer)  // OK, nothing else: an empty Trailers message
        }
        Frame.append(Croupier_Wire_V1_Trailers.with {
            if let status {
                $0.code = Int32(status.code.rawValue)
                $0.message = status.message
            }
            $0.metadata = metadata.wireEntries
            $0.notProcessed = notProcessed
        }, as: .trailers, stream: stream, to: &buffer)
    }

    /// The response headers frame, if headers are due.
    final func appendHeaders(_ headers: Metadata?, to buffer: inout [UInt8]) {
        guard let headers else { return }
        Frame.append(Croupier_Wire_V1_ResponseHeaders.with { $0.metadata = headers.wireEntries }, as: .responseHeaders, stream: id, to: &buffer)
    }

    /// The call is over (finished or cancelled): release what it holds.
    func ended() { connection.streamEnded(id) }
}

/// A unary call, the hot path: the request is kept as it arrives and the
/// handler starts at END_STREAM with it in hand. No message queue and no
/// flow-control state: one request and one response need neither.
final class UnaryServerCall: ServerCall, @unchecked Sendable {
    // @unchecked: `request` and `requestCount` are loop-thread only: the reader
    // fills them, and `takeUnary` reads them when the handler starts, on the
    // loop thread that started it at END_STREAM.
    private let body: @Sendable ([UInt8], ServerContext) async throws -> [UInt8]
    private var request: [UInt8]?
    private var requestCount = 0

    init(
        id: UInt32, method: MethodDescriptor, metadata: Metadata, deadline: Int64?, connection: ServerConnection,
        body: @escaping @Sendable ([UInt8], ServerContext) async throws -> [UInt8]
    ) {
        self.body = body
        super.init(id: id, method: method, metadata: metadata, deadline: deadline, connection: connection)
    }

    override func received(message: [UInt8]) -> Bool {
        if requestCount == 0 { request = message }
        requestCount += 1
        return true
    }

    override func receivedEnd() { connection.handlerDue(self) }

    override func takeUnary() throws -> (request: [UInt8], body: @Sendable ([UInt8], ServerContext) async throws -> [UInt8])? {
        let (message, count) = (request, requestCount)
        request = nil
        guard let message, count == 1 else {
            throw RPCError(.invalidArgument, "\(method) expects one request message, got \(count == 0 ? "none" : "more")")
        }
        return (message, body)
    }
}

/// A call of any kind, with message queues and flow control both ways. A
/// handler reading a stream of requests starts at CALL_START; one taking a
/// single request starts at END_STREAM.
final class StreamingServerCall: ServerCall, @unchecked Sendable {
    let kind: CallKind
    let flow: StreamFlow
    private let handle: @Sendable (RawServerCall) async throws -> Void

    init(
        id: UInt32, handler: RPCHandler, metadata: Metadata, deadline: Int64?, connection: ServerConnection,
        peer: Croupier_Wire_V1_Settings, ours: WireLimits
    ) {
        kind = handler.method.kind
        handle = handler.handle
        flow = StreamFlow(stream: id, peer: peer, ours: ours, connection: connection)
        super.init(id: id, method: handler.method, metadata: metadata, deadline: deadline, connection: connection)
    }

    override func received(message: [UInt8]) -> Bool {
        guard flow.receive.received(message.count) else { return false }
        flow.inbound.push(message)
        return true
    }

    override func receivedEnd() {
        flow.inbound.finish()
        if !kind.clientStreams { connection.handlerDue(self) }
    }

    override func received(credit: Int) { flow.send.credit(credit) }

    override func run() async throws {
        try await handle(RawServerCall(
            context: self, nextRequest: { [flow] in try await flow.inbound.next() },
            sendResponse: { [self] in try await sendResponse($0) }))
    }

    /// Sends a response message. Single-response calls hold it back so it
    /// leaves together with the TRAILERS in one write.
    private func sendResponse(_ bytes: [UInt8]) async throws {
        guard !isFinished else { throw CancellationError() }
        try checkSize(bytes)
        try await flow.send.acquire(bytes.count)
        guard kind.serverStreams else { return try hold(bytes) }
        let headers = responseIfUsed?.takeHeadersToSend()
        connection.write { buffer in
            appendHeaders(headers, to: &buffer)
            Frame.appendHeader(type: .message, stream: id, length: bytes.count, to: &buffer)
            buffer.append(contentsOf: bytes)
        }
    }

    override func ended() {
        flow.inbound.abort(CancellationError())
        flow.send.close(CancellationError())
        super.ended()
    }
}
