/// Why a byte sequence is not a valid encoding of the expected message.
///
/// Every malformed input ends in one of these; the decoder never traps and
/// never allocates more than the input it was given.
public enum ProtoDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input ended inside a varint, fixed-width value, tag or length-delimited field.
    case truncated
    /// A varint longer than 10 bytes, or whose 10th byte carries bits past 64.
    case overlongVarint
    /// Wire types 6 and 7 do not exist.
    case invalidWireType(UInt8)
    /// Field number 0 or above 2^29 - 1.
    case invalidFieldNumber(UInt64)
    /// Wire types 3/4 (proto2 groups) are not supported.
    case groupsNotSupported(fieldNumber: Int)
    /// A length prefix points past the end of the enclosing message.
    case lengthOutOfBounds(length: UInt64, available: Int)
    /// Nested messages go deeper than the decoder's limit.
    case recursionLimitExceeded(limit: Int)
    /// A `string` field is not valid UTF-8 (proto3 requires it).
    case invalidUTF8(fieldNumber: Int)
    /// A packed repeated fixed-width field whose length is not a multiple of the element size.
    case invalidPackedLength(fieldNumber: Int)

    public var description: String {
        switch self {
        case .truncated: return "input ends in the middle of a field"
        case .overlongVarint: return "varint longer than 10 bytes"
        case .invalidWireType(let t): return "invalid wire type \(t)"
        case .invalidFieldNumber(let n): return "invalid field number \(n)"
        case .groupsNotSupported(let f): return "field \(f) uses a group, which is not supported"
        case .lengthOutOfBounds(let l, let a): return "length \(l) exceeds the \(a) bytes available"
        case .recursionLimitExceeded(let l): return "messages nested deeper than \(l) levels"
        case .invalidUTF8(let f): return "string field \(f) is not valid UTF-8"
        case .invalidPackedLength(let f): return "packed field \(f) has a length that is not a whole number of elements"
        }
    }
}
