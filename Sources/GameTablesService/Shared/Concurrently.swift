import Storage

/// Runs `body` over `items` with at most `limit` in flight; returns how
/// many calls reported a failure (returned false).
func forEachConcurrently<T: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) async -> Bool) async -> Int {
    await withTaskGroup(of: Bool.self) { group in
        var next = 0
        var failures = 0
        func add() {
            guard next < items.count else { return }
            let item = items[next]
            next += 1
            group.addTask { await body(item) }
        }
        for _ in 0..<limit { add() }
        for await ok in group {
            if !ok { failures += 1 }
            add()
        }
        return failures
    }
}

/// Exponential backoff between rounds that had failures, reset by a clean round.
struct Backoff {
    let initial: Duration
    let cap: Duration
    private(set) var current: Duration

    init(initial: Duration = .milliseconds(100), cap: Duration = .seconds(5)) {
        self.initial = initial
        self.cap = cap
        current = initial
    }

    /// The delay to sleep after a round with `failures`, or nil for none.
    mutating func after(failures: Int) -> Duration? {
        guard failures > 0 else {
            current = initial
            return nil
        }
        defer { current = min(current * 2, cap) }
        return current
    }
}

/// The loop of an outbox worker: fetch a batch of work, run it with
/// `concurrency` in flight, back off after rounds with failures, and sleep
/// on `signal` (at most a second, for writers in other processes) when
/// there is nothing to do. Runs until the returned task is cancelled.
func drainLoop<T: Sendable>(
    signal: ChangeSignal, concurrency: Int, fetch: @escaping @Sendable (Int) async -> [T],
    work: @escaping @Sendable (T) async -> Bool
) -> Task<Void, Never> {
    Task {
        var backoff = Backoff()
        while !Task.isCancelled {
            let generation = signal.generation
            let items = await fetch(concurrency * 4)
            if items.isEmpty {
                await signal.wait(since: generation, timeout: .seconds(1))
                continue
            }
            let failures = await forEachConcurrently(items, limit: concurrency, work)
            if let delay = backoff.after(failures: failures) { try? await Task.sleep(for: delay) }
        }
    }
}
