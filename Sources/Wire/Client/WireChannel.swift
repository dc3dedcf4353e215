import Foundation
import Synchronization

/// Calls a Wire server: one authenticated connection (or a few) reused by
/// every call, connected on first use and again after a failure, with
/// exponential backoff. While the peer is down, calls fail at once with
/// UNAVAILABLE naming the peer and the error.
public final class WireChannel: ClosableChannel {
    private struct State {
        var connections: [ClientConnection?]
        var connecting: [Task<ClientConnection, Error>?]
        var next = 0
        var failures = 0
        var retryAt: ContinuousClock.Instant = .now
        var lastError: RPCError?
        var closed = false
    }

    public let host: String
    public let port: UInt16
    private let secret: [UInt8]
    private let peerName: String
    private let limits: WireLimits
    /// The loop of every connection, fixed so `executor` stays true across
    /// reconnects; `startUnary` completions run on it.
    public let loop: EventLoop
    private let state: Mutex<State>

    /// - Parameters:
    ///   - peerName: how this client names itself to the server (logs).
    ///   - connections: connections to spread calls over.
    ///   - loop: the event loop for every connection (default: the group's
    ///     next loop). All of a channel's connections share one loop, so a task
    ///     preferring `executor` writes its calls without waking another thread
    ///     and has its responses delivered on its own thread, whichever
    ///     connection carries them. For calls from several threads, use one
    ///     channel per loop (`LoopLocalChannel`).
    public init(
        host: String, port: UInt16, secret: [UInt8], peerName: String, connections: Int = 1,
        limits: WireLimits = WireLimits(), group: EventLoopGroup = .shared, loop: EventLoop? = nil
    ) {
        self.host = host
        self.port = port
        self.secret = secret
        self.peerName = peerName
        self.limits = limits
        self.loop = loop ?? group.nextLoop()
        state = Mutex(State(connections: Array(repeating: nil, count: max(1, connections)),
            connecting: Array(repeating: nil, count: max(1, connections))))
    }

    public var target: String { "\(host):\(port)" }

    /// The event loop of this channel's first connection. Tasks that mostly
    /// make calls on this channel run cheapest with it as executor preference:
    /// responses then resume them on the thread that read them.
    public var executor: any TaskExecutor { loop }

    private enum Pick { case ready(ClientConnection), wait(Task<ClientConnection, Error>), fail(RPCError) }

    /// A connection that takes calls, connecting if needed (unless the call's
    /// deadline has already passed: then it fails without waiting). Its
    /// failures are `notProcessed`: nothing of the call was sent.
    private func connection(for options: CallOptions) async throws -> ClientConnection {
        do {
            switch pick() {
            case .ready(let c): return c
            case .wait(let t):
                try options.checkDeadlineAhead()
                return try await t.value
            case .fail(let e): throw e
            }
        } catch {
            throw RPCError.from(error).markedNotProcessed
        }
    }

    /// The connection for the next call: of the ready ones, the one with the
    /// fewest calls in flight (ties go round-robin). Calls resumed by one
    /// connection's responses then go back out on that connection, together,
    /// as a batch; round-robin would split every batch across all
    /// connections, one small `send` each. Otherwise the next slot's state:
    /// connecting (starting the attempt if due) or failed.
    private func pick() -> Pick {
        state.withLock { s -> Pick in
            if s.closed { return .fail(RPCError(.unavailable, "channel to \(target) is closed")) }
            let i = s.next % s.connections.count
            s.next &+= 1
            if s.connections.count > 1, let c = leastLoaded(&s, from: i) { return .ready(c) }
            if let c = s.connections[i], c.acceptsCalls { return .ready(c) }
            if let t = s.connecting[i] { return .wait(t) }
            if ContinuousClock.now < s.retryAt, let e = s.lastError {
                return .fail(RPCError(.unavailable, "\(e.message); next attempt in \(s.retryAt - .now)"))
            }
            let task = Task { try await self.connect(slot: i) }
            s.connecting[i] = task
            return .wait(task)
        }
    }

    /// The ready connection with the fewest calls in flight, scanning from
    /// slot `first`; a slot found idle (never connected, or lost) starts
    /// connecting in the background when no backoff is pending.
    private func leastLoaded(_ s: inout State, from first: Int) -> ClientConnection? {
        var best: ClientConnection?
        var bestLoad = Int.max
        for k in 0..<s.connections.count {
            let i = (first + k) % s.connections.count
            if let c = s.connections[i], c.acceptsCalls {
                let load = c.callsInFlight
                if load < bestLoad { (best, bestLoad) = (c, load) }
            } else if s.connecting[i] == nil, ContinuousClock.now >= s.retryAt {
                s.connecting[i] = Task { try await self.connect(slot: i) }
            }
        }
        return best
    }

    private func connect(slot: Int) async throws -> ClientConnection {
        do {
            let fd = try Posix.startConnect(host: host, port: port)
            let c = ClientConnection(fd: fd, loop: loop, target: target, secret: secret, peerName: peerName, limits: limits)
            loop.execute { [loop] in loop.register(c, writable: true) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await c.waitReady() }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(self.limits.handshakeTimeoutMillis))
                    throw RPCError(.unavailable, "connecting to \(self.target) timed out")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
            state.withLock { s in
                s.connections[slot] = c
                s.connecting[slot] = nil
                s.failures = 0
                s.lastError = nil
            }
            return c
        } catch {
            let status = (error as? RPCError) ?? RPCError(.unavailable, "cannot connect to \(target): \(error)")
            state.withLock { s in
                s.connecting[slot] = nil
                s.failures += 1
                s.retryAt = .now + .milliseconds(min(5_000, 50 << min(s.failures, 7)))
                s.lastError = status
            }
            throw status
        }
    }

    public func withCall<Result: Sendable>(
        _ method: MethodDescriptor, options: CallOptions,
        _ body: @Sendable (any RawClientCall) async throws -> Result
    ) async throws -> Result {
        let connection = try await connection(for: options)
        let deadline = try options.deadlineAhead()
        let call = ClientCall(
            method: method, start: CallStartEncoding(method, timeoutMicros: deadline?.leftMicros, metadata: options.metadata),
            connection: connection)
        if method.kind.clientStreams { try call.open() }
        let timer = deadline.map { d in
            connection.loop.schedule(atNanos: d.atNanos) { call.end(RPCError(.deadlineExceeded, "deadline exceeded calling \(method)")) }
        }
        defer {
            if let timer { connection.loop.cancel(timer) }
            call.end(RPCError(.cancelled, "call abandoned"))
        }
        do {
            return try await body(call)
        } catch is CancellationError {
            throw RPCError(.cancelled, "the call to \(method) was cancelled")
        }
    }

    /// The unary hot path: one `UnaryClientCall`, one write, one wake-up
    /// when TRAILERS arrive.
    public func unaryBytes(_ method: MethodDescriptor, _ request: [UInt8], options: CallOptions) async throws -> UnaryResponse {
        let connection = try await connection(for: options)
        let call = try open(method, request, options, on: connection, completion: nil)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<UnaryResponse, Error>) in call.wait(c) }
        } onCancel: {
            call.cancel()
        }
    }

    /// Starts a unary call with no task when a connection is ready: its
    /// frames are written at once and `completion` runs on `loop` when
    /// TRAILERS arrive. Otherwise a task on `loop` connects first.
    @discardableResult
    public func startUnary(
        _ method: MethodDescriptor, _ request: [UInt8], options: CallOptions,
        completion: @escaping @Sendable (Result<UnaryResponse, RPCError>) -> Void
    ) -> UnaryCallHandle {
        guard case .ready(let connection) = pick() else {
            return .inTask(preferring: loop, completion) { try await self.unaryBytes(method, request, options: options) }
        }
        do {
            return UnaryCallHandle(call: .cancellable(try open(method, request, options, on: connection, completion: completion)))
        } catch {
            completion(.failure(RPCError.from(error)))
            return UnaryCallHandle(call: .ended)
        }
    }

    /// Opens a unary call's stream: CALL_START, the request and END_STREAM in one write.
    private func open(
        _ method: MethodDescriptor, _ request: [UInt8], _ options: CallOptions, on connection: ClientConnection,
        completion: UnaryClientCall.Completion?
    ) throws -> UnaryClientCall {
        let deadline: (atNanos: Int64, leftMicros: UInt64)?
        do {
            deadline = try options.deadlineAhead()
            try connection.checkRequestSize(request)
        } catch {
            throw RPCError.from(error).markedNotProcessed
        }
        let start = CallStartEncoding(method, timeoutMicros: deadline?.leftMicros, metadata: options.metadata)
        guard let call = connection.openStream({ UnaryClientCall(id: $0, method: method, connection: connection, completion: completion) }, frames: { id, buffer in
            Frame.append(start, as: .callStart, stream: id, to: &buffer)
            Frame.appendHeader(type: .message, stream: id, length: request.count, to: &buffer)
            buffer.append(contentsOf: request)
            Frame.appendHeader(type: .endStream, stream: id, length: 0, to: &buffer)
        }) else {
            throw RPCError(.unavailable, "connection to \(connection.target) is closing").markedNotProcessed
        }
        if let deadline { call.startDeadline(atNanos: deadline.atNanos) }
        return call
    }

    /// Resets every current connection (their calls fail with UNAVAILABLE,
    /// and nothing still queued for the peer is delivered later); the next
    /// call connects again.
    public func abortConnections() {
        let conns = state.withLock { s -> [ClientConnection] in
            defer { s.connections = s.connections.map { _ in nil } }
            return s.connections.compactMap { $0 }
        }
        for c in conns { c.abort() }
    }

    /// Closes every connection; later calls fail with UNAVAILABLE.
    public func close() {
        let conns = state.withLock { s -> [ClientConnection] in
            s.closed = true
            return s.connections.compactMap { $0 }
        }
        for c in conns { c.closeAfterFlush() }
    }
}

/// `RawClientCall` over a Wire stream. Single-request calls are corked: the
/// stream opens only when the request is complete, and CALL_START, the
/// request and END_STREAM leave in one write.
final class ClientCall: RawClientCall {
    private enum Phase {
        case corked(messages: [[UInt8]])
        case open(ClientStream)
        case ended(RPCError)
    }

    private let method: MethodDescriptor
    private let connection: ClientConnection
    private let callStart: CallStartEncoding
    private let phase = Mutex(Phase.corked(messages: []))

    init(method: MethodDescriptor, start: CallStartEncoding, connection: ClientConnection) {
        self.method = method
        self.connection = connection
        callStart = start
    }

    /// Opens the stream, sending CALL_START and any corked messages (plus END_STREAM if `halfClose`).
    @discardableResult
    func open(halfClose: Bool = false) throws -> ClientStream {
        try phase.withLock { p -> ClientStream in
            switch p {
            case .open(let s): return s
            case .ended(let e): throw e
            case .corked(let messages):
                guard let s = connection.openStream(frames: { id, buffer in
                    Frame.append(callStart, as: .callStart, stream: id, to: &buffer)
                    for m in messages {
                        Frame.appendHeader(type: .message, stream: id, length: m.count, to: &buffer)
                        buffer.append(contentsOf: m)
                    }
                    if halfClose { Frame(.endStream, stream: id).encode(into: &buffer) }
                }) else {
                    throw RPCError(.unavailable, "connection to \(connection.target) is closing").markedNotProcessed
                }
                p = .open(s)
                return s
            }
        }
    }

    func send(_ message: [UInt8]) async throws {
        try connection.checkRequestSize(message)
        let stream: ClientStream? = try phase.withLock { p in
            switch p {
            case .corked(var messages):
                messages.append(message)
                p = .corked(messages: messages)
                return nil
            case .open(let s): return s
            case .ended(let e): throw e
            }
        }
        guard let stream, try stream.acceptsRequests() else { return }  // corked, or answered already
        try await stream.flow.send.acquire(message.count)
        guard try stream.acceptsRequests() else { return }
        connection.write { buffer in
            Frame.appendHeader(type: .message, stream: stream.id, length: message.count, to: &buffer)
            buffer.append(contentsOf: message)
        }
    }

    func finishSending() async throws {
        let wasCorked = phase.withLock { p -> Bool in
            if case .corked = p { return true }
            return false
        }
        if wasCorked {
            try open(halfClose: true)
        } else if case .open(let s) = phase.withLock({ $0 }), try s.acceptsRequests() {
            connection.write(Frame(.endStream, stream: s.id))
        }
    }

    func receive() async throws -> [UInt8]? {
        try await open().flow.inbound.next()
    }

    var responseHeaders: Metadata { openStream?.headers ?? Metadata() }
    var responseTrailers: Metadata { openStream?.trailers ?? Metadata() }

    private var openStream: ClientStream? {
        phase.withLock { p in
            if case .open(let s) = p { return s }
            return nil
        }
    }

    /// Ends the call locally (deadline, abandonment): the stream's reader gets
    /// `status`, and the server a CANCEL if it ever saw the call.
    func end(_ status: RPCError) {
        let stream = phase.withLock { p -> ClientStream? in
            switch p {
            case .corked:
                p = .ended(status)
                return nil
            case .open(let s): return s
            case .ended: return nil
            }
        }
        guard let stream else { return }
        if stream.endLocally(status) { connection.write(Frame(.cancel, stream: stream.id)) }
        connection.streamEnded(stream.id)
    }
}

