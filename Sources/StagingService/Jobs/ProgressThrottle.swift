/// When a long job reports progress: once `interval` has passed since the
/// last report, or once `every` more items are done (so a fast job that
/// finishes within one interval still shows some). Pure, one per job.
struct ProgressThrottle {
    let interval: Duration
    let every: Int
    private var lastAt = ContinuousClock.now
    private var lastDone = 0

    init(interval: Duration, every: Int = 5_000) {
        self.interval = interval
        self.every = every
    }

    /// True when `done` items call for a report now (and counts it as made).
    mutating func due(done: Int, now: ContinuousClock.Instant = .now) -> Bool {
        guard now - lastAt >= interval || done - lastDone >= every else { return false }
        lastAt = now
        lastDone = done
        return true
    }
}
