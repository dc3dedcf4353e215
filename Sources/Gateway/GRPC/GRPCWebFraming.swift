import Foundation
import Wire

/// gRPC-Web's differences from gRPC on the wire (grpc/grpc doc/PROTOCOL-WEB.md):
/// the status and trailers travel at the end of the body, as a frame whose
/// flag byte has its top bit set, holding HTTP/1-style header lines; and in
/// the `-text` variants the whole body, both ways, is base64.
enum GRPCWebFraming {
    /// The trailer frame: flag 0x80, a 4-byte length, `name:value\r\n` lines.
    static func trailerFrame(_ trailers: [(String, String)]) -> [UInt8] {
        let block = Array(trailers.map { "\($0.0):\($0.1)\r\n" }.joined().utf8)
        let n = UInt32(block.count)
        return [0x80, UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n)] + block
    }

    /// Base64 of response bytes for `-text`: each write is encoded on its own
    /// (padded), which the spec's clients decode as a sequence of chunks.
    static func text(_ bytes: [UInt8]) -> [UInt8] { Array(Data(bytes).base64EncodedString().utf8) }
}

/// Decodes a `-text` request body that arrives in pieces of any size:
/// base64 is decoded four characters at a time, the rest kept for the next piece.
struct Base64Stream {
    private var pending: [UInt8] = []

    /// The bytes the characters so far decode to; throws on a character outside base64.
    mutating func append(_ chars: UnsafeRawBufferPointer) throws -> [UInt8] {
        pending.append(contentsOf: chars.lazy.filter { $0 != 0x0D && $0 != 0x0A })
        let whole = pending.count / 4 * 4
        guard whole > 0 else { return [] }
        // Group by group: a client may send padded chunks one after another ("AA==AAAA").
        var out: [UInt8] = []
        out.reserveCapacity(whole / 4 * 3)
        for start in stride(from: 0, to: whole, by: 4) {
            guard let decoded = Data(base64Encoded: Data(pending[start..<start + 4])) else {
                throw RPCError(.internal, "a grpc-web-text body that is not base64")
            }
            out += decoded
        }
        pending.removeFirst(whole)
        return out
    }

    /// Characters that did not make a group of four (the body must not end with any).
    var hasPartialGroup: Bool { !pending.isEmpty }
}
