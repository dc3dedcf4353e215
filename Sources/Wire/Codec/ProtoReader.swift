/// A cursor over one encoded message (or one nested length-delimited field).
///
/// Guarantees: every read is bounds-checked against `end`; a length prefix is
/// validated against the bytes actually present before anything is copied,
/// so a hostile length can never cause a large allocation; nested messages
/// consume one unit of `remainingDepth` and decoding fails with
/// `recursionLimitExceeded` rather than recursing without bound.
///
/// The reader borrows its buffer: it is only valid inside the
/// `withUnsafeBytes` scope that produced it.
@frozen
public struct ProtoReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline var position: Int
    @usableFromInline var end: Int
    @usableFromInline var remainingDepth: Int
    @usableFromInline let recursionLimit: Int
    /// Where the most recent tag began, so an unknown field can be kept verbatim.
    @usableFromInline var tagStart: Int = 0

    /// Default nesting limit, the same as the reference protobuf implementations.
    public static let defaultRecursionLimit = 100

    public init(buffer: UnsafeRawBufferPointer, recursionLimit: Int = ProtoReader.defaultRecursionLimit) {
        // An empty buffer may have a nil base address; any non-nil pointer works for zero bytes.
        self.base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        self.position = 0
        self.end = buffer.count
        self.remainingDepth = recursionLimit
        self.recursionLimit = recursionLimit
    }

    @inlinable public var isAtEnd: Bool { position >= end }

    // MARK: Primitive reads

    @inlinable
    public mutating func readVarint() throws -> UInt64 {
        guard position < end else { throw ProtoDecodingError.truncated }
        let first = base.load(fromByteOffset: position, as: UInt8.self)
        if first < 0x80 {
            position &+= 1
            return UInt64(first)
        }
        return try readVarintSlow()
    }

    @usableFromInline
    mutating func readVarintSlow() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var p = position
        while true {
            guard p < end else { throw ProtoDecodingError.truncated }
            let byte = base.load(fromByteOffset: p, as: UInt8.self)
            p += 1
            if shift == 63 {
                // The 10th byte may contribute only the top bit.
                guard byte <= 1 else { throw ProtoDecodingError.overlongVarint }
                result |= UInt64(byte) << 63
                break
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        position = p
        return result
    }

    @inlinable
    public mutating func readFixed32() throws -> UInt32 {
        guard end - position >= 4 else { throw ProtoDecodingError.truncated }
        let v = base.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position &+= 4
        return UInt32(littleEndian: v)
    }

    @inlinable
    public mutating func readFixed64() throws -> UInt64 {
        guard end - position >= 8 else { throw ProtoDecodingError.truncated }
        let v = base.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position &+= 8
        return UInt64(littleEndian: v)
    }

    /// Reads a length prefix and checks that many bytes are present.
    @inlinable
    public mutating func readLength() throws -> Int {
        let length = try readVarint()
        let available = end - position
        guard length <= UInt64(available) else {
            throw ProtoDecodingError.lengthOutOfBounds(length: length, available: available)
        }
        return Int(truncatingIfNeeded: length)
    }

    @inlinable
    public mutating func readBytes() throws -> [UInt8] {
        let n = try readLength()
        let start = position
        position &+= n
        return [UInt8](UnsafeRawBufferPointer(start: base + start, count: n))
    }

    @inlinable
    public mutating func readString(fieldNumber: Int) throws -> String {
        let n = try readLength()
        let bytes = UnsafeRawBufferPointer(start: base + position, count: n).bindMemory(to: UInt8.self)
        position &+= n
        // ASCII (ids, slugs, metadata) is valid UTF-8 as it stands: decoding
        // it skips the generic validating path, which costs a metadata lookup per string.
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw ProtoDecodingError.invalidUTF8(fieldNumber: fieldNumber)
        }
        return s
    }

    // MARK: Tags and structure

    /// The next field's tag, or nil at the end of this message.
    @inlinable
    public mutating func nextTag() throws -> ProtoTag? {
        guard position < end else { return nil }
        tagStart = position
        let key = try readVarint()
        let fieldNumber = key >> 3
        guard fieldNumber != 0, fieldNumber <= UInt64(ProtoTag.maxFieldNumber) else {
            throw ProtoDecodingError.invalidFieldNumber(fieldNumber)
        }
        guard let wireType = ProtoWireType(rawValue: UInt8(key & 7)) else {
            throw ProtoDecodingError.invalidWireType(UInt8(key & 7))
        }
        if wireType == .startGroup || wireType == .endGroup {
            throw ProtoDecodingError.groupsNotSupported(fieldNumber: Int(fieldNumber))
        }
        return ProtoTag(fieldNumber: Int(fieldNumber), wireType: wireType)
    }

    /// Runs `body` on a reader limited to the next length-delimited field,
    /// one nesting level deeper, then continues after that field.
    @inlinable
    public mutating func readNested<T>(_ body: (inout ProtoReader) throws -> T) throws -> T {
        let n = try readLength()
        guard remainingDepth > 0 else {
            throw ProtoDecodingError.recursionLimitExceeded(limit: recursionLimit)
        }
        let savedEnd = end
        end = position &+ n
        remainingDepth &-= 1
        defer { remainingDepth &+= 1 }
        let result = try body(&self)
        guard position == end else { throw ProtoDecodingError.truncated }
        end = savedEnd
        return result
    }

    /// Skips the value of a field with `tag`, which has just been read.
    @inlinable
    public mutating func skipValue(_ tag: ProtoTag) throws {
        switch tag.wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readFixed64()
        case .fixed32: _ = try readFixed32()
        case .lengthDelimited: position &+= try readLength()
        case .startGroup, .endGroup:
            throw ProtoDecodingError.groupsNotSupported(fieldNumber: tag.fieldNumber)
        }
    }

    /// Skips the current field and keeps its tag and value, byte for byte.
    @inlinable
    public mutating func keepUnknown(_ tag: ProtoTag, in unknown: inout ProtoUnknownFields) throws {
        let start = tagStart
        try skipValue(tag)
        unknown.append(UnsafeRawBufferPointer(start: base + start, count: position - start))
    }

    /// Reads a packed run of scalars. Fixed-width runs must be a whole number
    /// of elements; capacity is reserved only for elements actually present.
    @inlinable
    mutating func readPacked<T>(
        elementSize: Int?, fieldNumber: Int, into values: inout [T], _ element: (inout ProtoReader) throws -> T
    ) throws {
        let n = try readLength()
        if let elementSize {
            guard n % elementSize == 0 else { throw ProtoDecodingError.invalidPackedLength(fieldNumber: fieldNumber) }
            values.reserveCapacity(values.count + n / elementSize)
        }
        let savedEnd = end
        end = position &+ n
        while position < end { values.append(try element(&self)) }
        end = savedEnd
    }
}
