import Glibc

/// The time of event loops and call deadlines: nanoseconds of
/// `CLOCK_BOOTTIME`, the clock behind `ContinuousClock` on Linux. A call's
/// deadline converts between a `ContinuousClock.Instant` (what callers and
/// handlers see) and loop nanoseconds (what timers and CALL_START's timeout
/// use) by arithmetic, without reading the clock again: each reading costs
/// about 22 ns here, and a call with a deadline took eight of them before.
public enum LoopClock {
    /// Now, in nanoseconds.
    @inline(__always)
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// Now, in milliseconds (timeouts counted in ticks, log durations).
    public static func nowMillis() -> Int64 { now() / 1_000_000 }

    /// One instant and its nanoseconds, read back to back once per process.
    /// Both readings come from the same clock, so the pair stays exact to
    /// within the few nanoseconds between the two readings.
    private static let origin: (instant: ContinuousClock.Instant, nanos: Int64) = (ContinuousClock.now, now())

    /// `instant` in loop nanoseconds; one more than about 100 years from
    /// the origin counts as 100 years (so no arithmetic overflows).
    public static func nanos(_ instant: ContinuousClock.Instant) -> Int64 {
        let c = (instant - origin.instant).components
        let century: Int64 = 3_155_760_000
        guard abs(c.seconds) < century else { return origin.nanos &+ (c.seconds < 0 ? -century : century) &* 1_000_000_000 }
        return origin.nanos &+ c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    }

    /// Loop nanoseconds as a `ContinuousClock.Instant`.
    public static func instant(_ nanos: Int64) -> ContinuousClock.Instant {
        origin.instant + .nanoseconds(nanos &- origin.nanos)
    }
}
