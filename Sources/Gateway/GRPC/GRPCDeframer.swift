import Wire

/// gRPC's message framing on HTTP/2 DATA: a 1-byte compressed flag, a 4-byte
/// big-endian length, then the message. Messages may span DATA frames and a
/// frame may hold many messages.
struct GRPCDeframer {
    struct Message {
        let compressed: Bool
        let payload: [UInt8]
    }

    let maxMessageBytes: Int
    private var buffer: [UInt8] = []

    init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    /// True while part of a message is buffered (the stream must not end here).
    var hasPartialMessage: Bool { !buffer.isEmpty }

    /// Adds bytes; returns the messages they complete. Throws
    /// RESOURCE_EXHAUSTED for a message over the limit and INTERNAL for a
    /// flag byte other than 0 or 1.
    mutating func append(_ bytes: UnsafeRawBufferPointer) throws -> [Message] {
        buffer.append(contentsOf: bytes)
        var messages: [Message] = []
        var offset = 0
        while buffer.count - offset >= 5 {
            let flag = buffer[offset]
            guard flag <= 1 else { throw RPCError(.internal, "malformed gRPC message prefix: flag byte \(flag)") }
            let length = Int(buffer[offset + 1]) << 24 | Int(buffer[offset + 2]) << 16 | Int(buffer[offset + 3]) << 8 | Int(buffer[offset + 4])
            guard length <= maxMessageBytes else {
                throw RPCError(.resourceExhausted, "message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes")
            }
            guard buffer.count - offset - 5 >= length else { break }
            messages.append(Message(compressed: flag == 1, payload: Array(buffer[(offset + 5)..<(offset + 5 + length)])))
            offset += 5 + length
        }
        if offset > 0 { buffer.removeFirst(offset) }
        return messages
    }

    static func appendPrefixed(_ payload: [UInt8], to out: inout [UInt8]) {
        let n = UInt32(payload.count)
        out.append(0)
        out.append(UInt8(truncatingIfNeeded: n >> 24))
        out.append(UInt8(truncatingIfNeeded: n >> 16))
        out.append(UInt8(truncatingIfNeeded: n >> 8))
        out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: payload)
    }
}
