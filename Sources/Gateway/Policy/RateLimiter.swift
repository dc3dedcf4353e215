import Synchronization

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

/// Token buckets per (principal, method). A bucket holds `limit` tokens and
/// refills continuously at `limit / period`; a bucket that has refilled
/// completely carries no information, so it is dropped — memory stays
/// bounded by the callers active within one period.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    private let rules: [String: RateLimitRule]
    private let buckets = Mutex<(table: [String: Bucket], lastSweep: Double)>(([:], 0))

    init(rules: [RateLimitRule]) {
        var table: [String: RateLimitRule] = [:]
        for r in rules { table[r.method] = r }
        self.rules = table
    }

    /// Takes one token; nil if allowed, else the milliseconds until one is available.
    func take(principal: String, method: String, now: Double) -> Int? {
        guard let rule = rules[method], rule.limit > 0 else { return nil }
        let rate = Double(rule.limit) / rule.periodSeconds
        return buckets.withLock { state -> Int? in
            if now - state.lastSweep > rule.periodSeconds { sweep(&state.table, now: now); state.lastSweep = now }
            let key = principal + "\u{0}" + method
            var b = state.table[key] ?? Bucket(tokens: Double(rule.limit), updated: now)
            b.tokens = min(Double(rule.limit), b.tokens + (now - b.updated) * rate)
            b.updated = now
            if b.tokens >= 1 {
                b.tokens -= 1
                state.table[key] = b
                return nil
            }
            state.table[key] = b
            return Int(((1 - b.tokens) / rate * 1000).rounded(.up))
        }
    }

    /// Buckets currently held (for tests and metrics).
    var bucketCount: Int { buckets.withLock { $0.table.count } }

    private func sweep(_ table: inout [String: Bucket], now: Double) {
        table = table.filter { key, b in
            let method = String(key.split(separator: "\u{0}", maxSplits: 1).last ?? "")
            guard let rule = rules[method] else { return false }
            let rate = Double(rule.limit) / rule.periodSeconds
            return b.tokens + (now - b.updated) * rate < Double(rule.limit)
        }
    }
}
