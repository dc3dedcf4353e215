/// When a busy event loop polls before it sleeps, and for how long: the rules
/// of `EventLoop.waitForEvents`, apart from the loop's I/O so they can be
/// tested with a scripted clock. One per loop, loop thread only.
///
/// - A spin polls until a poll finds events, the spin time (or the next
///   timer) runs out, or a yield between polls lost the CPU for longer than
///   `preemptedNanos`: then the machine has no core to spare, and spinning
///   only takes CPU from the thread that would answer.
/// - After a spin that found nothing (or gave way), the next 1, 2, 4 … up to
///   64 busy iterations skip spinning, until a spin pays again.
struct SpinPolicy {
    /// A yield that kept the loop off the CPU longer than this ends the spin.
    static let preemptedNanos: Int64 = 20_000
    static let longestBackoff = 64

    let spinNanos: Int64
    /// Busy iterations left that do not spin, and how many the last backoff skipped.
    private(set) var skip = 0
    private(set) var backoff = 0

    init(spinNanos: Int64) { self.spinNanos = spinNanos }

    /// One spin: what `poll` found, or 0 if nothing came before `now` passed
    /// the spin time or `limit`, a yield lost the CPU, or this turn is skipped
    /// (then `poll` is not called at all).
    mutating func spin(
        limit: Int64?, now: () -> Int64, poll: () -> Int32, yield: () -> Void
    ) -> Int32 {
        if skip > 0 {
            skip -= 1
            return 0
        }
        var time = now()
        let until = min(time &+ spinNanos, limit ?? .max)
        repeat {
            let n = poll()
            if n != 0 {
                backoff = 0
                return n
            }
            yield()
            let before = time
            time = now()
            if time - before > Self.preemptedNanos { break }
        } while time < until
        backoff = min(max(1, backoff * 2), Self.longestBackoff)
        skip = backoff
        return 0
    }
}
