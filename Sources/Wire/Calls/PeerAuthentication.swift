import COpenSSL

/// HMAC-SHA256 challenge–response proving both peers hold the internal
/// secret (docs/wire.md §1). MACs are compared in constant time.
public enum PeerAuthentication {
    static let clientLabel = Array("croupier-wire/1 client".utf8)
    static let serverLabel = Array("croupier-wire/1 server".utf8)
    /// A secret shorter than this proves nothing: a peer holding it is never
    /// accepted, and a side holding it accepts no one (fail closed).
    public static let minimumSecretBytes = 16

    static func nonce() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        precondition(RAND_bytes(&bytes, 32) == 1, "RAND_bytes failed")
        return bytes
    }

    static func mac(secret: [UInt8], label: [UInt8], _ first: [UInt8], _ second: [UInt8]) -> [UInt8] {
        let input = label + first + second
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = secret.withUnsafeBytes { key in
            input.withUnsafeBytes { data in
                HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    data.count, &out, &length)
            }
        }
        return out
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }
}
