import Synchronization

/// Messages received on one stream, waiting for the application. The loop
/// thread pushes; one consumer task pulls. Ends with nil (clean end) or an
/// error (e.g. the call's non-OK status).
final class MessageQueue: Sendable {
    private struct State {
        var items: [[UInt8]] = []
        var head = 0
        var end: Result<Void, Error>?
        var waiter: CheckedContinuation<[UInt8]?, Error>?
    }

    private let state = Mutex(State())
    /// Called with each message's size as the consumer takes it (flow-control credit).
    private let onConsume: @Sendable (Int) -> Void

    init(onConsume: @escaping @Sendable (Int) -> Void = { _ in }) { self.onConsume = onConsume }

    /// The queue of a stream's incoming messages: as the application takes
    /// them, credit goes back to the peer through `connection` (WINDOW_UPDATE).
    static func returningCredit(stream id: UInt32, window: ReceiveWindow, connection: SocketConnection) -> MessageQueue {
        MessageQueue(onConsume: { [weak connection] bytes in
            if let increment = window.consumed(bytes) {
                connection?.write(Frame(.windowUpdate, stream: id, payload: withUnsafeBytes(of: UInt32(increment).bigEndian, Array.init)))
            }
        })
    }

    func push(_ message: [UInt8]) {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, Error>? in
            guard s.end == nil else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.items.append(message)
            return nil
        }
        if let waiter {
            onConsume(message.count)
            waiter.resume(returning: message)
        }
    }

    /// No more messages; queued ones are still delivered first.
    func finish(_ error: Error? = nil) {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, Error>? in
            guard s.end == nil else { return nil }
            s.end = error.map { .failure($0) } ?? .success(())
            defer { s.waiter = nil }
            return s.waiter
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    /// Ends the queue with `error` even if messages are still queued (deadline, cancel).
    func abort(_ error: Error) {
        state.withLock { $0.items.removeAll(); $0.head = 0 }
        finish(error)
    }

    func next() async throws -> [UInt8]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8]?, Error>) in
                let ready = state.withLock { s -> Result<[UInt8]?, Error>? in
                    if s.head < s.items.count {
                        let m = s.items[s.head]
                        s.head += 1
                        if s.head == s.items.count { s.items.removeAll(keepingCapacity: true); s.head = 0 }
                        return .success(m)
                    }
                    if let end = s.end { return end.map { nil } }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    s.waiter = c
                    return nil
                }
                if let ready {
                    if case .success(let m?) = ready { onConsume(m.count) }
                    c.resume(with: ready)
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, Error>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }
}

/// Send-side credit for one stream (docs/wire.md, flow control): a sender
/// may send while its window is positive; WINDOW_UPDATE adds credit. When the
/// stream ends, waiting senders learn how: `close(nil)` (the peer already
/// answered; the send is moot) lets them return, `close(error)` makes them
/// throw the stream's status, e.g. DEADLINE_EXCEEDED.
final class SendWindow: Sendable {
    private struct State {
        var window: Int
        var waiters: [CheckedContinuation<Void, Error>] = []
        var closed: Result<Void, Error>?
    }

    private let state: Mutex<State>

    init(initial: Int) { state = Mutex(State(window: initial)) }

    func acquire(_ bytes: Int) async throws {
        while true {
            let ready = state.withLock { s -> Result<Void, Error>? in
                if let closed = s.closed { return closed }
                if s.window > 0 { s.window -= bytes; return .success(()) }
                return nil
            }
            if let ready { return try ready.get() }
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.window > 0 || s.closed != nil { return true }
                    s.waiters.append(c)
                    return false
                }
                if resumeNow { c.resume() }
            }
        }
    }

    func credit(_ bytes: Int) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Error>] in
            s.window += bytes
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func close(_ error: Error?) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Error>] in
            if s.closed == nil { s.closed = error.map { .failure($0) } ?? .success(()) }
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }  // each re-checks `closed` in `acquire`
    }
}

/// Receive-side accounting for one stream: when the application has consumed
/// half a window, it is time to return that much credit.
final class ReceiveWindow: Sendable {
    private let window: Int
    private let state = Mutex((unconsumed: 0, consumedSinceUpdate: 0))

    init(window: Int) { self.window = window }

    /// False when the peer has more unconsumed bytes outstanding than it was ever allowed.
    func received(_ bytes: Int) -> Bool {
        state.withLock { s in
            s.unconsumed += bytes
            return s.unconsumed <= 2 * window + 65_536
        }
    }

    /// The WINDOW_UPDATE increment to send now, if any.
    func consumed(_ bytes: Int) -> Int? {
        state.withLock { s in
            s.unconsumed -= bytes
            s.consumedSinceUpdate += bytes
            guard s.consumedSinceUpdate >= window / 2 else { return nil }
            defer { s.consumedSinceUpdate = 0 }
            return s.consumedSinceUpdate
        }
    }
}
