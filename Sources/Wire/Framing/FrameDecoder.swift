/// Splits a byte stream into frames, incrementally: feed whatever a read
/// returned, then take every complete frame.
///
/// Guarantees: a length above `maxFrameSize` is rejected as soon as the
/// header is seen, before any payload is buffered, so a hostile length costs
/// nothing; bytes after an error are never interpreted.
public struct FrameDecoder: Sendable {
    public let maxFrameSize: UInt32
    private var buffer: [UInt8] = []
    private var start = 0
    private var expectPreface: Bool

    public init(maxFrameSize: UInt32, expectPreface: Bool = true) {
        self.maxFrameSize = maxFrameSize
        self.expectPreface = expectPreface
    }

    /// Bytes received but not yet part of a returned frame.
    public var bufferedCount: Int { buffer.count - start }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65_536 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete frame, or nil until more bytes arrive.
    public mutating func next() throws -> Frame? { try next { $0.frame } }

    /// Runs `body` on the next complete frame, borrowed from the decoder's
    /// buffer (no copy); nil until more bytes arrive.
    public mutating func next<T>(_ body: (FrameView) throws -> T) throws -> T? {
        var result: T?
        try forEach { frame in
            result = try body(frame)
            return false
        }
        return result
    }

    /// Runs `body` on each complete frame in order, borrowed from the
    /// decoder's buffer (no copy), until none is left or `body` returns
    /// false. The buffer is borrowed once for the whole batch, not per frame.
    /// A frame `body` saw is consumed even if `body` throws; a bad header
    /// throws before any frame after it is looked at.
    public mutating func forEach(_ body: (FrameView) throws -> Bool) throws {
        if expectPreface {
            guard bufferedCount >= WirePreface.bytes.count else { return }
            let got = Array(buffer[start..<(start + 8)])
            guard got == WirePreface.bytes else { throw FrameError.badPreface(got) }
            start += 8
            expectPreface = false
        }
        let (end, maxFrameSize) = (buffer.count, maxFrameSize)
        var position = start
        defer { start = position }
        try buffer.withUnsafeBytes { raw in
            while end - position >= Frame.headerSize {
                let p = raw.baseAddress! + position
                let length = UInt32(bigEndian: p.loadUnaligned(as: UInt32.self))
                let typeByte = p.load(fromByteOffset: 4, as: UInt8.self)
                let flags = p.load(fromByteOffset: 5, as: UInt8.self)
                guard length <= maxFrameSize else { throw FrameError.frameTooLarge(length: length, max: maxFrameSize) }
                guard let type = FrameType(rawValue: typeByte) else { throw FrameError.unknownType(typeByte) }
                guard flags == 0 else { throw FrameError.nonzeroFlags(type: typeByte, flags: flags) }
                let total = Frame.headerSize + Int(length)
                guard end - position >= total else { return }
                let stream = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt32.self))
                let payload = UnsafeRawBufferPointer(start: p + Frame.headerSize, count: Int(length))
                position += total
                guard try body(FrameView(type: type, streamID: stream, payload: payload)) else { return }
            }
        }
    }
}

/// A decoded frame whose payload is borrowed from the decoder's buffer:
/// valid only inside the `FrameDecoder.next` closure that received it.
public struct FrameView {
    public let type: FrameType
    public let streamID: UInt32
    public let payload: UnsafeRawBufferPointer

    /// The payload copied out, for keeping.
    public var bytes: [UInt8] { [UInt8](payload) }
    public var frame: Frame { Frame(type, stream: streamID, payload: bytes) }
}
