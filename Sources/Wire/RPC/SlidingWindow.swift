/// The platform's one rate-limit model: at most `limit` calls in any
/// `windowMillis`. A refusal's retry hint is exact: the moment the oldest of
/// the last `limit` counted calls leaves the window, the next call is
/// allowed (and not a moment before). The gateway's limits and the
/// services' own (loyalty's manual rewards, counted from its ledger) use
/// this same rule, so a client that waits for a hint is never refused again
/// by the other.
public struct SlidingWindow: Sendable, Equatable {
    public let limit: Int
    public let windowMillis: Int64

    public init(limit: Int, windowMillis: Int64) {
        self.limit = max(1, limit)
        self.windowMillis = max(1, windowMillis)
    }

    /// Nil if one more call is allowed at `now`, else the milliseconds until
    /// it is. `recent`: the times of the counted calls, ascending (any older
    /// than the window are ignored).
    public func retryAfter(recent: some Collection<Int64>, now: Int64) -> Int64? {
        let inWindow = recent.filter { $0 > now - windowMillis }
        guard inWindow.count >= limit else { return nil }
        return wait(until: inWindow[inWindow.index(inWindow.endIndex, offsetBy: -limit)], leaves: now)
    }

    /// The milliseconds from `now` until a call made at `time` leaves the
    /// window: for a store that counts its calls itself and looks up only the
    /// `limit`-th most recent when the count reaches the limit.
    public func wait(until time: Int64, leaves now: Int64) -> Int64 { max(1, time + windowMillis - now) }

    /// The standard answer to a refused call: RESOURCE_EXHAUSTED whose
    /// message says when to retry, and a `retry-after-ms` trailer.
    public static func refusal(_ what: String, retryAfterMillis: Int64) -> RPCError {
        var trailers = Metadata()
        trailers.add("retry-after-ms", String(retryAfterMillis))
        return RPCError(.resourceExhausted, "\(what); retry in \(retryAfterMillis) ms", metadata: trailers)
    }
}
