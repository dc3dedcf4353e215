/// Frame types of Wire version 1 (docs/wire.md §2).
public enum FrameType: UInt8, Sendable {
    case settings = 0x01
    case authChallenge = 0x02
    case authResponse = 0x03
    case authOK = 0x04
    case callStart = 0x10
    case message = 0x11
    case endStream = 0x12
    case responseHeaders = 0x13
    case trailers = 0x14
    case cancel = 0x15
    case windowUpdate = 0x16
    case ping = 0x20
    case pong = 0x21
    case goAway = 0x22
}

/// One decoded frame.
public struct Frame: Sendable, Equatable {
    public static let headerSize = 10

    public var type: FrameType
    public var streamID: UInt32
    public var payload: [UInt8]

    public init(_ type: FrameType, stream: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.streamID = stream
        self.payload = payload
    }

    /// A frame whose payload is a protobuf control message.
    public init<M: ProtoMessage>(_ type: FrameType, stream: UInt32 = 0, message: M) {
        self.init(type, stream: stream, payload: message.serializedBytes())
    }

    /// Appends header and payload to `buffer`.
    public func encode(into buffer: inout [UInt8]) {
        Frame.appendHeader(type: type, stream: streamID, length: payload.count, to: &buffer)
        buffer.append(contentsOf: payload)
    }

    public var encoded: [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(Frame.headerSize + payload.count)
        encode(into: &b)
        return b
    }

    @inlinable
    public static func appendHeader(type: FrameType, stream: UInt32, length: Int, to buffer: inout [UInt8]) {
        // length (4) · type · flags (0) · stream id (4), big-endian, as one
        // 10-byte append: ten single-byte appends cost ten capacity checks.
        let head = UInt64(UInt32(length)) << 32 | UInt64(type.rawValue) << 24 | UInt64(stream >> 16)
        let tail = UInt16(truncatingIfNeeded: stream)
        withUnsafeBytes(of: (head.bigEndian, tail.bigEndian)) { buffer.append(contentsOf: $0) }
    }

    /// A frame whose payload is `message`'s encoding, written in place (no
    /// intermediate buffer): MESSAGE frames, and control frames on hot paths.
    public static func append<M: ProtoMessage>(_ message: M, as type: FrameType = .message, stream: UInt32, to buffer: inout [UInt8]) {
        let size = message.encodedSize
        appendHeader(type: type, stream: stream, length: size, to: &buffer)
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: size))
        buffer.withUnsafeMutableBytes { raw in
            _ = message.encode(into: UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
        }
    }
}

/// The 8 bytes each side sends first: "CRWIRE", version 1, reserved 0.
public enum WirePreface {
    public static let bytes: [UInt8] = Array("CRWIRE".utf8) + [1, 0]
}

/// Why a byte stream is not valid Wire framing. Each is a connection error.
public enum FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    case badPreface([UInt8])
    case frameTooLarge(length: UInt32, max: UInt32)
    case unknownType(UInt8)
    case nonzeroFlags(type: UInt8, flags: UInt8)

    public var description: String {
        switch self {
        case .badPreface(let b): return "bad preface \(b.map { String($0, radix: 16) }.joined(separator: " ")); expected CRWIRE v1"
        case .frameTooLarge(let l, let m): return "frame of \(l) bytes exceeds the \(m)-byte limit"
        case .unknownType(let t): return "unknown frame type 0x\(String(t, radix: 16))"
        case .nonzeroFlags(let t, let f): return "frame type 0x\(String(t, radix: 16)) has undefined flags 0x\(String(f, radix: 16))"
        }
    }

    /// The GOAWAY reason this error is reported with.
    public var goAwayReason: Croupier_Wire_V1_GoAwayReason {
        if case .frameTooLarge = self { return .frameTooLarge }
        return .protocolError
    }
}
