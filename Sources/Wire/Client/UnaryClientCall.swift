import Synchronization

/// A unary call on a Wire connection, the hot path of every service: one
/// object per call, opened with CALL_START, the request and END_STREAM in a
/// single write, completed by the reader when TRAILERS arrive. No message
/// queue and no flow-control state: one response needs neither (the stream's
/// initial window always admits it).
final class UnaryClientCall: ClientStreamReceiver, CallCancelling, @unchecked Sendable {
    // @unchecked: `headers`, `response` and `responses` are touched only by the
    // connection's reader (loop thread); the outcome is behind `state`.
    private struct State {
        var settled = false
        /// Kept only for a waiter still to come (`wait`); a completion or a
        /// waiter already there takes the outcome straight away.
        var outcome: Result<UnaryResponse, RPCError>?
        var waiter: UnsafeContinuation<UnaryResponse, Error>?
        var deadline: (timer: LoopTimer, loop: EventLoop)?
    }

    typealias Completion = @Sendable (Result<UnaryResponse, RPCError>) -> Void

    let id: UInt32
    private let method: MethodDescriptor
    /// The connection carrying the call (it holds the call only while the call is open).
    private let connection: ClientConnection
    /// Set for a call started with `startUnary`: it gets the outcome instead of a waiting task.
    private let completion: Completion?
    private let state = Mutex(State())
    private var headers = Metadata()
    private var response: [UInt8]?
    private var responses = 0

    init(id: UInt32, method: MethodDescriptor, connection: ClientConnection, completion: Completion? = nil) {
        self.id = id
        self.method = method
        self.connection = connection
        self.completion = completion
    }

    /// Resumes `c` with the call's outcome, now or when it arrives. The caller
    /// makes the continuation itself: awaiting an async `response()` instead
    /// cost one more executor switch per call (counted with uprobes: 7 → 6).
    func wait(_ c: UnsafeContinuation<UnaryResponse, Error>) {
        let ready = state.withLock { s -> Result<UnaryResponse, RPCError>? in
            if s.settled { return s.outcome.take() ?? .failure(RPCError(.internal, "the outcome of the call to \(method) was already taken")) }
            s.waiter = c
            return nil
        }
        if let ready { c.resume(with: ready.mapError { $0 as Error }) }
    }

    /// Ends the call with DEADLINE_EXCEEDED at `deadline` unless it ends first.
    func startDeadline(atNanos deadline: Int64) {
        let timer = connection.loop.schedule(atNanos: deadline) { [self] in
            endLocally(RPCError(.deadlineExceeded, "deadline exceeded calling \(method)"))
        }
        let ended = state.withLock { s -> Bool in
            if s.settled { return true }
            s.deadline = (timer, connection.loop)
            return false
        }
        if ended { connection.loop.cancel(timer) }
    }

    /// Settles the call once; true if this was the first outcome.
    @discardableResult
    func settle(_ outcome: Result<UnaryResponse, RPCError>) -> Bool {
        let keep = completion == nil
        let (first, waiter, deadline) = state.withLock { s -> (Bool, UnsafeContinuation<UnaryResponse, Error>?, (timer: LoopTimer, loop: EventLoop)?) in
            guard !s.settled else { return (false, nil, nil) }
            s.settled = true
            if keep && s.waiter == nil { s.outcome = outcome }
            defer { (s.waiter, s.deadline) = (nil, nil) }
            return (true, s.waiter, s.deadline)
        }
        if let deadline { deadline.loop.cancel(deadline.timer) }
        if first, let completion {
            completion(outcome)
        } else {
            waiter?.resume(with: outcome.mapError { $0 as Error })
        }
        return first
    }

    /// Ends the call here (deadline, cancellation): the caller gets `status`,
    /// the server a CANCEL. Nothing happens if the call had already ended.
    func endLocally(_ status: RPCError) {
        guard settle(.failure(status)) else { return }
        connection.write(Frame(.cancel, stream: id))
        connection.streamEnded(id)
    }

    /// `UnaryCallHandle.cancel()`: ends the call with CANCELLED.
    func cancel() { endLocally(RPCError(.cancelled, "the call to \(method) was cancelled")) }

    // MARK: ClientStreamReceiver (loop thread)

    func received(headers: Metadata) { self.headers = headers }

    func received(message: [UInt8]) -> Bool {
        if responses == 0 { response = message }
        responses += 1
        return true
    }

    func received(status: RPCError?, trailers: Metadata) {
        if let status {
            settle(.failure(status))
        } else if responses > 1 {
            settle(.failure(RPCError(.internal, "\(method) sent more than one response message")))
        } else if let response {
            settle(.success(UnaryResponse(headers: headers, message: response, trailers: trailers)))
        } else {
            settle(.failure(RPCError(.internal, "\(method) ended with OK but sent no response message")))
        }
    }

    func received(credit: Int) {}

    func failed(_ status: RPCError) { settle(.failure(status)) }
}
