import COpenSSL
import Foundation
import Wire

/// JSON Web Tokens signed with HS256 (RFC 7519 / 7515), the only algorithm
/// the gateway accepts. Verification is constant-time on the signature and
/// checks `exp` and `nbf`; any other `alg` (including `none`) is refused.
public enum JWT {
    public struct Claims: Sendable, Equatable {
        public var subject: String
        public var permissions: [String]
        public var roles: [String]
        public var expires: Int64?
        public var notBefore: Int64?

        public init(subject: String, permissions: [String], roles: [String] = [], expires: Int64? = nil, notBefore: Int64? = nil) {
            self.subject = subject
            self.permissions = permissions
            self.roles = roles
            self.expires = expires
            self.notBefore = notBefore
        }
    }

    /// Why a token was refused; the text goes to the client with UNAUTHENTICATED.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    public static func sign(_ claims: Claims, secret: [UInt8]) -> String {
        var body: [String: Any] = ["sub": claims.subject, "perms": claims.permissions]
        if !claims.roles.isEmpty { body["roles"] = claims.roles }
        if let e = claims.expires { body["exp"] = e }
        if let n = claims.notBefore { body["nbf"] = n }
        let header = base64URL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = base64URL([UInt8]((try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()))
        let input = header + "." + payload
        return input + "." + base64URL(hmac(secret, Array(input.utf8)))
    }

    /// The claims of a valid token, or why it is not valid at `now` (Unix seconds).
    public static func verify(_ token: String, secret: [UInt8], now: Int64) throws(Refusal) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Refusal("malformed token: expected header.payload.signature") }
        guard let headerBytes = decodeBase64URL(parts[0]),
            let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { throw Refusal("malformed token header") }
        guard let alg = header["alg"] as? String else { throw Refusal("token header has no alg") }
        guard alg == "HS256" else { throw Refusal("token algorithm \(alg) is not accepted (HS256 only)") }
        guard let signature = decodeBase64URL(parts[2]) else { throw Refusal("malformed token signature") }
        let expected = hmac(secret, Array("\(parts[0]).\(parts[1])".utf8))
        guard signature.count == expected.count, CRYPTO_memcmp(signature, expected, expected.count) == 0 else {
            throw Refusal("token signature is not valid")
        }
        guard let payloadBytes = decodeBase64URL(parts[1]),
            let payload = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any]
        else { throw Refusal("malformed token payload") }
        guard let sub = payload["sub"] as? String, !sub.isEmpty else { throw Refusal("token has no sub claim") }
        let claims = Claims(
            subject: sub, permissions: payload["perms"] as? [String] ?? [], roles: payload["roles"] as? [String] ?? [],
            expires: (payload["exp"] as? NSNumber)?.int64Value, notBefore: (payload["nbf"] as? NSNumber)?.int64Value)
        try checkTime(claims, now: now)
        return claims
    }

    /// Refuses claims that are expired or not yet valid at `now` (Unix seconds).
    public static func checkTime(_ claims: Claims, now: Int64) throws(Refusal) {
        if let exp = claims.expires, now >= exp { throw Refusal("token expired at \(exp) (now \(now))") }
        if let nbf = claims.notBefore, now < nbf { throw Refusal("token not valid before \(nbf) (now \(now))") }
    }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        return out
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { [UInt8]($0) }
    }
}
