import Synchronization
import Wire

/// A rate rule: `limit` calls per `periodSeconds` for each principal, on one method.
public struct RateLimitRule: Sendable, Equatable {
    public var method: String
    public var limit: Int
    public var periodSeconds: Double

    public init(method: String, limit: Int, periodSeconds: Double) {
        self.method = method
        self.limit = limit
        self.periodSeconds = periodSeconds
    }
}

/// Rate limits per (principal, method) in the platform's one model,
/// `SlidingWindow`: at most `limit` calls in any period, each refusal with
/// the exact time the next call is allowed. Each key keeps the times of its
/// last `limit` calls; a key whose newest call left the window carries no
/// information and is dropped, so memory follows the callers active within
/// one period.
final class RateLimiter: Sendable {
    private let rules: [String: SlidingWindow]
    private let calls = Mutex<(table: [String: [Int64]], lastSweep: Int64)>(([:], 0))

    init(rules: [RateLimitRule]) {
        var table: [String: SlidingWindow] = [:]
        for r in rules { table[r.method] = SlidingWindow(limit: r.limit, windowMillis: Int64((r.periodSeconds * 1000).rounded(.up))) }
        self.rules = table
    }

    /// Counts one call at `nowMillis`; nil if allowed, else the milliseconds until one is.
    func take(principal: String, method: String, nowMillis now: Int64) -> Int64? {
        guard let window = rules[method] else { return nil }
        return calls.withLock { state -> Int64? in
            if now - state.lastSweep > window.windowMillis {
                sweep(&state.table, now: now)
                state.lastSweep = now
            }
            let key = principal + "\u{0}" + method
            var times = state.table[key] ?? []
            if let wait = window.retryAfter(recent: times, now: now) { return wait }
            times.append(now)
            if times.count > window.limit { times.removeFirst(times.count - window.limit) }
            state.table[key] = times
            return nil
        }
    }

    /// Keys currently held (for tests and metrics).
    var bucketCount: Int { calls.withLock { $0.table.count } }

    private func sweep(_ table: inout [String: [Int64]], now: Int64) {
        table = table.filter { key, times in
            let method = String(key.split(separator: "\u{0}", maxSplits: 1).last ?? "")
            guard let window = rules[method], let newest = times.last else { return false }
            return newest > now - window.windowMillis
        }
    }
}
