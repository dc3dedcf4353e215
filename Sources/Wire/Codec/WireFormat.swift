/// The protobuf wire format's building blocks: wire types and field tags.
///
/// See the protobuf encoding guide. Groups (wire types 3 and 4) are a
/// deprecated proto2 feature; Croupier's decoder refuses them.
public enum ProtoWireType: UInt8, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5

    /// Bytes per value for fixed-width wire types.
    @inlinable public var fixedSize: Int? {
        switch self {
        case .fixed32: return 4
        case .fixed64: return 8
        default: return nil
        }
    }
}

/// A decoded field key: field number and wire type.
@frozen
public struct ProtoTag: Sendable, Equatable {
    public let fieldNumber: Int
    public let wireType: ProtoWireType

    @inlinable
    public init(fieldNumber: Int, wireType: ProtoWireType) {
        self.fieldNumber = fieldNumber
        self.wireType = wireType
    }

    /// Largest field number protobuf allows (2^29 - 1).
    public static let maxFieldNumber = 536_870_911

    /// The varint that introduces this field on the wire.
    @inlinable
    public var rawValue: UInt64 { UInt64(fieldNumber) << 3 | UInt64(wireType.rawValue) }
}

/// ZigZag mapping of signed integers for `sint32`/`sint64`.
@usableFromInline
enum ZigZag {
    @inlinable static func encode32(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }
    @inlinable static func encode64(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    @inlinable static func decode32(_ v: UInt32) -> Int32 { Int32(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }
    @inlinable static func decode64(_ v: UInt64) -> Int64 { Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))) }
}
