import COpenSSL
import Synchronization

/// `x-correlation-id`: a caller's well-formed id is kept, anything else is
/// replaced by a new 128-bit one (32 hex digits).
///
/// New ids are a random 64-bit prefix drawn once per process, then a 64-bit
/// counter: unique across processes and restarts, and cheap. An id names a
/// call in logs and is echoed to the caller; it is not a secret, so it need
/// not be unpredictable. (Drawing 16 random bytes per call from OpenSSL took
/// about 9% of the gateway's CPU under load.)
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

    private static let prefix: UInt64 = {
        var bytes: UInt64 = 0
        guard withUnsafeMutableBytes(of: &bytes, { RAND_bytes($0.baseAddress!.assumingMemoryBound(to: UInt8.self), 8) }) == 1 else {
            fatalError("RAND_bytes failed: no random source for correlation ids")
        }
        return bytes
    }()
    private static let counter = Atomic<UInt64>(0)

    static func make() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 32) { out in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<32 {
                let word = i < 16 ? prefix : n
                out[i] = digits.utf8Start[Int((word >> (60 - 4 * UInt64(i % 16))) & 15)]
            }
            return 32
        }
    }
}
