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
    func checkDeadlineAhead() throws {
        if let deadline, deadline <= .now { throw RPCError(.deadlineExceeded, "deadline passed before the call started") }
    }

    /// Options whose deadline is `timeout` from now.
    public static func timeout(_ timeout: Duration, metadata: Metadata = Metadata()) -> CallOptions {
        CallOptions(deadline: .now + timeout, metadata: metadata)
    }
}
