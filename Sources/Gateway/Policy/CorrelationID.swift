import COpenSSL

/// `x-correlation-id`: a caller's well-formed id is kept, anything else is
/// replaced by a random 128-bit one (32 hex digits).
enum CorrelationID {
    static func accept(_ incoming: String?) -> String {
        if let incoming, isWellFormed(incoming) { return incoming }
        return make()
    }

    /// `[A-Za-z0-9._-]{8,128}`
    static func isWellFormed(_ id: String) -> Bool {
        let u = id.utf8
        return (8...128).contains(u.count) && u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    static func make() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = RAND_bytes(&bytes, 16)
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(32)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
