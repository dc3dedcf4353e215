/// Per-call settings a client chooses.
public struct CallOptions: Sendable {
    /// Absolute time by which the call must finish; nil for none.
    public var deadline: ContinuousClock.Instant?
    /// Metadata sent with the call start.
    public var metadata: Metadata

    public init(deadline: ContinuousClock.Instant? = nil, metadata: Metadata = Metadata()) {
        self.deadline = deadline
        self.metadata = metadata
    }

    /// Throws DEADLINE_EXCEEDED if the deadline has already passed: a call
    /// that cannot finish in time is not started.
    func checkDeadlineAhead() throws { _ = try deadlineAhead() }

    /// The deadline in `LoopClock` nanoseconds and the microseconds left
    /// until it (at least 1), from one reading of the clock; nil without a
    /// deadline. Throws DEADLINE_EXCEEDED if it has passed, like `checkDeadlineAhead`.
    func deadlineAhead() throws -> (atNanos: Int64, leftMicros: UInt64)? {
        guard let deadline else { return nil }
        let at = LoopClock.nanos(deadline)
        let left = at &- LoopClock.now()
        guard left > 0 else { throw RPCError(.deadlineExceeded, "deadline passed before the call started") }
        return (at, UInt64(max(1, left / 1000)))
    }

    /// Options whose deadline is `timeout` from now.
    public static func timeout(_ timeout: Duration, metadata: Metadata = Metadata()) -> CallOptions {
        CallOptions(deadline: .now + timeout, metadata: metadata)
    }
}
