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
