import Synchronization

/// "Something was committed": a generation counter that waiters can sleep on.
///
/// A waiter reads `generation`, checks for work, and if there is none calls
/// `wait(since:timeout:)`; a commit in between bumps the generation, so the
/// wake-up cannot be lost. The timeout covers writers in other processes.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())
    /// A database's signal has a name: on PostgreSQL, a commit that raises it
    /// notifies every process listening on that database (`Transaction.wake`).
    public let name: String?

    public init(name: String? = nil) { self.name = name }

    public var generation: UInt64 { state.withLock { $0.generation } }

    public func signal() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation &+= 1
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Returns when the generation differs from `since`, after `timeout`, or on cancellation.
    public func wait(since: UInt64, timeout: Duration) async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            resume(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { s -> Bool in
                    if s.generation != since || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if ready { c.resume() }
            }
        } onCancel: {
            resume(id)
        }
        timer.cancel()
    }

    private func resume(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
}

/// One `ChangeSignal` per key (an operation, a request): waiters on one key
/// wake only for it. A key's signal is made on first use and dropped when
/// raised, or by a waiter that found nothing left to wait for.
///
/// A waiter takes `signal(for:)`, reads its generation, re-checks its state,
/// and then waits; a raise in between bumps the generation, so the wake-up
/// cannot be lost.
public final class KeyedSignals: Sendable {
    private let table = Mutex<[String: ChangeSignal]>([:])

    public init() {}

    public func signal(for key: String) -> ChangeSignal {
        table.withLock { t in
            if let s = t[key] { return s }
            let s = ChangeSignal(name: key)
            t[key] = s
            return s
        }
    }

    /// Raises every live signal, keeping them (notifications may have been missed).
    public func signalAll() {
        for s in table.withLock({ Array($0.values) }) { s.signal() }
    }

    public func raise(_ key: String) { table.withLock { $0.removeValue(forKey: key) }?.signal() }

    public func drop(_ key: String) { _ = table.withLock { $0.removeValue(forKey: key) } }

    /// Keys with a live signal (for tests: nothing is left behind).
    public var count: Int { table.withLock { $0.count } }
}
