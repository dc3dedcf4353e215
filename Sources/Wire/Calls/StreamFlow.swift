import Synchronization

/// One stream's flow control (docs/wire.md): credit for what this side
/// sends, accounting of what the peer sends, and the queue of incoming
/// messages that returns credit (WINDOW_UPDATE) as the application takes them.
/// Client and server streams are built the same way from both sides' settings.
struct StreamFlow: Sendable {
    let send: SendWindow
    let receive: ReceiveWindow
    let inbound: MessageQueue

    init(stream id: UInt32, peer: Croupier_Wire_V1_Settings, ours: WireLimits, connection: SocketConnection) {
        send = SendWindow(initial: peer.initialWindowBytes)
        let receive = ReceiveWindow(window: Int(ours.initialWindow), largestMessage: Int(ours.maxFrameSize))
        self.receive = receive
        inbound = MessageQueue(onConsume: { [weak connection] bytes in
            if let increment = receive.consumed(bytes) {
                connection?.write(Frame(.windowUpdate, stream: id, payload: withUnsafeBytes(of: UInt32(increment).bigEndian, Array.init)))
            }
        })
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

    /// The largest window: more credit than this is not kept, so a peer's
    /// endless WINDOW_UPDATEs cannot overflow it (docs/wire.md).
    static let largestWindow = Int(Int32.max)

    func credit(_ bytes: Int) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Error>] in
            s.window = min(s.window + bytes, Self.largestWindow)
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
    /// A sender may start a message while its window is positive, so the
    /// most a peer can have outstanding is the window plus one message.
    private let allowance: Int
    private let state = Mutex((unconsumed: 0, consumedSinceUpdate: 0))

    init(window: Int, largestMessage: Int) {
        self.window = window
        allowance = window + largestMessage
    }

    /// False when the peer has more unconsumed bytes outstanding than it was
    /// ever allowed: the window plus the largest message this side accepts.
    func received(_ bytes: Int) -> Bool {
        state.withLock { s in
            s.unconsumed += bytes
            return s.unconsumed <= allowance
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
