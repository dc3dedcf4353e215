import Synchronization

/// Messages received on one stream, waiting for the application. The loop
/// thread pushes; one consumer task pulls. Ends with nil (clean end) or an
/// error (e.g. the call's non-OK status).
public final class MessageQueue: Sendable {
    private struct State {
        var items: [[UInt8]] = []
        var head = 0
        var end: Result<Void, Error>?
        var waiter: CheckedContinuation<[UInt8]?, Error>?
    }

    private let state = Mutex(State())
    /// Called with each message's size as the consumer takes it (flow-control credit).
    private let onConsume: @Sendable (Int) -> Void

    public init(onConsume: @escaping @Sendable (Int) -> Void = { _ in }) { self.onConsume = onConsume }

    public func push(_ message: [UInt8]) {
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
    public func finish(_ error: Error? = nil) {
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
    public func abort(_ error: Error) {
        state.withLock { $0.items.removeAll(); $0.head = 0 }
        finish(error)
    }

    public func next() async throws -> [UInt8]? {
        // Fast path: a message (or the end) is already here — no suspension.
        if let ready = state.withLock({ s in Self.take(&s) }) { return try deliver(ready) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8]?, Error>) in
                let ready = state.withLock { s -> Result<[UInt8]?, Error>? in
                    if let r = Self.take(&s) { return r }
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

    /// The next queued message or the end, if either is here.
    private static func take(_ s: inout State) -> Result<[UInt8]?, Error>? {
        if s.head < s.items.count {
            let m = s.items[s.head]
            s.head += 1
            if s.head == s.items.count { s.items.removeAll(keepingCapacity: true); s.head = 0 }
            return .success(m)
        }
        if let end = s.end { return end.map { nil } }
        return nil
    }

    private func deliver(_ ready: Result<[UInt8]?, Error>) throws -> [UInt8]? {
        let m = try ready.get()
        if let m { onConsume(m.count) }
        return m
    }
}
