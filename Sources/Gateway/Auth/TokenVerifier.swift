import Synchronization

/// Verifies bearer tokens for the gateway, remembering the claims of tokens
/// it has already verified: a client sends the same token with every call,
/// and a full check (HMAC plus two JSON parses) costs more than forwarding
/// the call. The time claims are checked on every use, so a remembered
/// token still expires on time. Only valid tokens are remembered; the
/// memory is bounded.
final class TokenVerifier: Sendable {
    private let secret: [UInt8]
    private let requireExpiry: Bool
    private let capacity: Int
    private let verified = Mutex<[String: JWT.Claims]>([:])

    init(secret: [UInt8], requireExpiry: Bool = true, capacity: Int = 4096) {
        self.secret = secret
        self.requireExpiry = requireExpiry
        self.capacity = capacity
    }

    /// The claims of `token` if it is valid at `now` (Unix seconds).
    func claims(_ token: String, now: Int64) throws(JWT.Refusal) -> JWT.Claims {
        if let known = verified.withLock({ $0[token] }) {
            try JWT.checkTime(known, now: now)
            return known
        }
        let claims = try JWT.verify(token, secret: secret, now: now, requireExpiry: requireExpiry)
        verified.withLock { v in
            if v.count >= capacity { v.remove(at: v.startIndex) }  // any one: a bound, not a policy
            v[token] = claims
        }
        return claims
    }

    /// Tokens remembered (tests).
    var count: Int { verified.withLock { $0.count } }
}
