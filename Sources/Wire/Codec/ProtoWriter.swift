/// Writes an encoding into a buffer whose exact size was computed first.
///
/// Messages compute `encodedSize` and then encode front to back into one
/// allocation of exactly that size: no growth, no shifting to back-patch
/// length prefixes, and callers that frame messages (Wire) can write the
/// frame header before the body without a second buffer. Every write is
/// bounds-checked, so a size/encode mismatch traps instead of corrupting memory.
@frozen
public struct ProtoWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var count: Int = 0

    public init(buffer: UnsafeMutableRawBufferPointer) {
        self.base = buffer.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!
        self.capacity = buffer.count
    }

    /// Bytes written so far.
    @inlinable public var bytesWritten: Int { count }

    @inlinable
    mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        precondition(capacity - count >= n, "ProtoWriter overflow: encodedSize disagrees with encode")
        let p = base + count
        count &+= n
        return p
    }

    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        let p = reserve(ProtoSize.varint(v))
        var i = 0
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i &+= 1
        }
        p.storeBytes(of: UInt8(v), toByteOffset: i, as: UInt8.self)
    }

    @inlinable
    public mutating func writeTag(_ fieldNumber: Int, _ wireType: ProtoWireType) {
        writeVarint(UInt64(fieldNumber) << 3 | UInt64(wireType.rawValue))
    }

    @inlinable
    public mutating func writeFixed32(_ value: UInt32) {
        reserve(4).storeBytes(of: value.littleEndian, as: UInt32.self)
    }

    @inlinable
    public mutating func writeFixed64(_ value: UInt64) {
        reserve(8).storeBytes(of: value.littleEndian, as: UInt64.self)
    }

    @inlinable
    public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    @inlinable
    public mutating func writeLengthDelimited(_ bytes: [UInt8]) {
        writeVarint(UInt64(bytes.count))
        bytes.withUnsafeBytes { writeRaw($0) }
    }

    @inlinable
    public mutating func writeLengthDelimited(_ string: String) {
        var s = string
        s.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            writeRaw(UnsafeRawBufferPointer(utf8))
        }
    }

    @inlinable
    public mutating func writeUnknown(_ unknown: ProtoUnknownFields) {
        unknown.bytes.withUnsafeBytes { writeRaw($0) }
    }
}

/// Encoded sizes, shared by `encodedSize` implementations and the writer.
public enum ProtoSize {
    @inlinable
    public static func varint(_ v: UInt64) -> Int {
        // 1 byte per started group of 7 significant bits; 0 takes 1 byte.
        let bits = 64 - (v | 1).leadingZeroBitCount
        return (bits &+ 6) / 7
    }

    @inlinable
    public static func tag(_ fieldNumber: Int) -> Int { varint(UInt64(fieldNumber) << 3) }

    @inlinable
    public static func lengthDelimited(_ length: Int) -> Int { varint(UInt64(length)) &+ length }
}
