import COpenSSL
import Foundation
import Wire

/// JSON Web Tokens signed with HS256 (RFC 7519 / 7515), the only algorithm
/// the gateway accepts. Verification is constant-time on the signature and
/// checks `exp` and `nbf`; any other `alg` (including `none`) is refused.
/// Strict as the hardened libraries are: every part must be canonical
/// base64url (no padding, no spare bits), JSON objects with a repeated key,
/// a `crit` header (no extension is understood), and `exp`/`nbf` that are
/// not numbers are refused, and so is a token without `exp` unless the
/// caller allows it.
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
    public static func verify(_ token: String, secret: [UInt8], now: Int64, requireExpiry: Bool = true) throws(Refusal) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Refusal("malformed token: expected header.payload.signature") }
        let header = try object(parts[0], "header")
        guard let alg = header["alg"] as? String else { throw Refusal("token header has no alg") }
        guard alg == "HS256" else { throw Refusal("token algorithm \(alg) is not accepted (HS256 only)") }
        if header["crit"] != nil { throw Refusal("token header names critical extensions (crit); none is understood") }
        guard let signature = decodeBase64URL(parts[2]) else { throw Refusal("malformed token signature (canonical base64url required)") }
        let expected = hmac(secret, Array("\(parts[0]).\(parts[1])".utf8))
        guard signature.count == expected.count, CRYPTO_memcmp(signature, expected, expected.count) == 0 else {
            throw Refusal("token signature is not valid")
        }
        let payload = try object(parts[1], "payload")
        guard let sub = payload["sub"] as? String, !sub.isEmpty else { throw Refusal("token has no sub claim") }
        let claims = Claims(
            subject: sub, permissions: payload["perms"] as? [String] ?? [], roles: payload["roles"] as? [String] ?? [],
            expires: try numericDate(payload["exp"], "exp"), notBefore: try numericDate(payload["nbf"], "nbf"))
        if requireExpiry && claims.expires == nil { throw Refusal("token has no exp claim") }
        try checkTime(claims, now: now)
        return claims
    }

    /// A token part that must be a JSON object, each key once.
    private static func object(_ part: Substring, _ name: String) throws(Refusal) -> [String: Any] {
        guard let bytes = decodeBase64URL(part) else { throw Refusal("malformed token \(name) (canonical base64url required)") }
        // Foundation's parser keeps one of two equal keys silently, and two parsers that keep
        // different ones read one token two ways: a token that repeats a key is refused.
        guard let parsed = try? JSONValue(parsing: bytes, depthLimit: 64) else { throw Refusal("malformed token \(name): not JSON") }
        if let key = parsed.firstRepeatedKey { throw Refusal("token \(name) repeats the key \"\(key)\"") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw Refusal("malformed token \(name): not a JSON object")
        }
        return object
    }

    /// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional); nil if absent.
    private static func numericDate(_ value: Any?, _ name: String) throws(Refusal) -> Int64? {
        guard let value else { return nil }
        guard let n = value as? NSNumber, String(cString: n.objCType) != "c",  // "c": a JSON true/false
            n.doubleValue.isFinite,
            abs(n.doubleValue) < 1e15
        else { throw Refusal("token claim \(name) must be a number of seconds") }
        return Int64(n.doubleValue.rounded(.down))
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

    /// Decodes base64url without padding; nil unless `text` is the one
    /// canonical encoding of its bytes (no '=', no '+' or '/', unused bits zero).
    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 < 128 && isalnum(Int32($0)) != 0) }) else {
            return nil
        }
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        guard let bytes = Data(base64Encoded: s).map({ [UInt8]($0) }), base64URL(bytes) == text else { return nil }
        return bytes
    }
}
