/// How one proto field type maps to a Swift type and to the wire.
///
/// Each proto type (`int32`, `sint64`, `string`, a message, an enum ...) is a
/// caseless type conforming to this protocol; generated code names the kind
/// and the generic helpers on `ProtoReader`/`ProtoWriter` do the rest, so the
/// encoding rules live in exactly one place.
public protocol ProtoFieldKind {
    associatedtype Value: Sendable & Equatable
    static var wireType: ProtoWireType { get }
    static var defaultValue: Value { get }
    static func isDefault(_ value: Value) -> Bool
    static func read(from reader: inout ProtoReader, fieldNumber: Int) throws -> Value
    static func write(_ value: Value, to writer: inout ProtoWriter)
    /// Size of the value alone (without tag; with length prefix when length-delimited).
    static func size(of value: Value) -> Int
}

/// Kinds that may appear as map keys (integers, bool, string).
public protocol ProtoMapKeyKind: ProtoFieldKind where Value: Hashable {
    /// The order deterministic encoding sorts keys in.
    static func precedes(_ a: Value, _ b: Value) -> Bool
}

extension ProtoMapKeyKind where Value: Comparable {
    @inlinable public static func precedes(_ a: Value, _ b: Value) -> Bool { a < b }
}

// MARK: Varint kinds

public enum ProtoInt32: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: Int32 { 0 }
    @inlinable public static func isDefault(_ v: Int32) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int32 {
        Int32(truncatingIfNeeded: try r.readVarint())
    }
    // Negative int32 values are sign-extended to 10 bytes, as the spec requires.
    @inlinable public static func write(_ v: Int32, to w: inout ProtoWriter) { w.writeVarint(UInt64(bitPattern: Int64(v))) }
    @inlinable public static func size(of v: Int32) -> Int { ProtoSize.varint(UInt64(bitPattern: Int64(v))) }
}

public enum ProtoInt64: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: Int64 { 0 }
    @inlinable public static func isDefault(_ v: Int64) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int64 {
        Int64(bitPattern: try r.readVarint())
    }
    @inlinable public static func write(_ v: Int64, to w: inout ProtoWriter) { w.writeVarint(UInt64(bitPattern: v)) }
    @inlinable public static func size(of v: Int64) -> Int { ProtoSize.varint(UInt64(bitPattern: v)) }
}

public enum ProtoUInt32: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: UInt32 { 0 }
    @inlinable public static func isDefault(_ v: UInt32) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try r.readVarint())
    }
    @inlinable public static func write(_ v: UInt32, to w: inout ProtoWriter) { w.writeVarint(UInt64(v)) }
    @inlinable public static func size(of v: UInt32) -> Int { ProtoSize.varint(UInt64(v)) }
}

public enum ProtoUInt64: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: UInt64 { 0 }
    @inlinable public static func isDefault(_ v: UInt64) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> UInt64 { try r.readVarint() }
    @inlinable public static func write(_ v: UInt64, to w: inout ProtoWriter) { w.writeVarint(v) }
    @inlinable public static func size(of v: UInt64) -> Int { ProtoSize.varint(v) }
}

public enum ProtoSInt32: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: Int32 { 0 }
    @inlinable public static func isDefault(_ v: Int32) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int32 {
        ZigZag.decode32(UInt32(truncatingIfNeeded: try r.readVarint()))
    }
    @inlinable public static func write(_ v: Int32, to w: inout ProtoWriter) { w.writeVarint(UInt64(ZigZag.encode32(v))) }
    @inlinable public static func size(of v: Int32) -> Int { ProtoSize.varint(UInt64(ZigZag.encode32(v))) }
}

public enum ProtoSInt64: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: Int64 { 0 }
    @inlinable public static func isDefault(_ v: Int64) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int64 {
        ZigZag.decode64(try r.readVarint())
    }
    @inlinable public static func write(_ v: Int64, to w: inout ProtoWriter) { w.writeVarint(ZigZag.encode64(v)) }
    @inlinable public static func size(of v: Int64) -> Int { ProtoSize.varint(ZigZag.encode64(v)) }
}

public enum ProtoBool: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: Bool { false }
    @inlinable public static func isDefault(_ v: Bool) -> Bool { !v }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Bool { try r.readVarint() != 0 }
    @inlinable public static func write(_ v: Bool, to w: inout ProtoWriter) { w.writeVarint(v ? 1 : 0) }
    @inlinable public static func size(of v: Bool) -> Int { 1 }
    @inlinable public static func precedes(_ a: Bool, _ b: Bool) -> Bool { !a && b }
}

public enum ProtoEnumKind<E: ProtoEnum>: ProtoFieldKind {
    public static var wireType: ProtoWireType { .varint }
    public static var defaultValue: E { E(protoValue: 0) }
    @inlinable public static func isDefault(_ v: E) -> Bool { v.protoValue == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> E {
        E(protoValue: Int32(truncatingIfNeeded: try r.readVarint()))
    }
    @inlinable public static func write(_ v: E, to w: inout ProtoWriter) { ProtoInt32.write(v.protoValue, to: &w) }
    @inlinable public static func size(of v: E) -> Int { ProtoInt32.size(of: v.protoValue) }
}

// MARK: Fixed-width kinds

public enum ProtoFixed32: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .fixed32 }
    public static var defaultValue: UInt32 { 0 }
    @inlinable public static func isDefault(_ v: UInt32) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> UInt32 { try r.readFixed32() }
    @inlinable public static func write(_ v: UInt32, to w: inout ProtoWriter) { w.writeFixed32(v) }
    @inlinable public static func size(of v: UInt32) -> Int { 4 }
}

public enum ProtoFixed64: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .fixed64 }
    public static var defaultValue: UInt64 { 0 }
    @inlinable public static func isDefault(_ v: UInt64) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> UInt64 { try r.readFixed64() }
    @inlinable public static func write(_ v: UInt64, to w: inout ProtoWriter) { w.writeFixed64(v) }
    @inlinable public static func size(of v: UInt64) -> Int { 8 }
}

public enum ProtoSFixed32: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .fixed32 }
    public static var defaultValue: Int32 { 0 }
    @inlinable public static func isDefault(_ v: Int32) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int32 {
        Int32(bitPattern: try r.readFixed32())
    }
    @inlinable public static func write(_ v: Int32, to w: inout ProtoWriter) { w.writeFixed32(UInt32(bitPattern: v)) }
    @inlinable public static func size(of v: Int32) -> Int { 4 }
}

public enum ProtoSFixed64: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .fixed64 }
    public static var defaultValue: Int64 { 0 }
    @inlinable public static func isDefault(_ v: Int64) -> Bool { v == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Int64 {
        Int64(bitPattern: try r.readFixed64())
    }
    @inlinable public static func write(_ v: Int64, to w: inout ProtoWriter) { w.writeFixed64(UInt64(bitPattern: v)) }
    @inlinable public static func size(of v: Int64) -> Int { 8 }
}

/// proto3 implicit presence compares the bit pattern, so -0.0 is written.
public enum ProtoFloat: ProtoFieldKind {
    public static var wireType: ProtoWireType { .fixed32 }
    public static var defaultValue: Float { 0 }
    @inlinable public static func isDefault(_ v: Float) -> Bool { v.bitPattern == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Float {
        Float(bitPattern: try r.readFixed32())
    }
    @inlinable public static func write(_ v: Float, to w: inout ProtoWriter) { w.writeFixed32(v.bitPattern) }
    @inlinable public static func size(of v: Float) -> Int { 4 }
}

public enum ProtoDouble: ProtoFieldKind {
    public static var wireType: ProtoWireType { .fixed64 }
    public static var defaultValue: Double { 0 }
    @inlinable public static func isDefault(_ v: Double) -> Bool { v.bitPattern == 0 }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> Double {
        Double(bitPattern: try r.readFixed64())
    }
    @inlinable public static func write(_ v: Double, to w: inout ProtoWriter) { w.writeFixed64(v.bitPattern) }
    @inlinable public static func size(of v: Double) -> Int { 8 }
}

// MARK: Length-delimited kinds

public enum ProtoString: ProtoMapKeyKind {
    public static var wireType: ProtoWireType { .lengthDelimited }
    public static var defaultValue: String { "" }
    @inlinable public static func isDefault(_ v: String) -> Bool { v.isEmpty }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> String {
        try r.readString(fieldNumber: fieldNumber)
    }
    @inlinable public static func write(_ v: String, to w: inout ProtoWriter) { w.writeLengthDelimited(v) }
    @inlinable public static func size(of v: String) -> Int { ProtoSize.lengthDelimited(v.utf8.count) }
    /// Byte-wise (UTF-8) order, as the reference implementations sort map keys.
    @inlinable public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

public enum ProtoBytes: ProtoFieldKind {
    public static var wireType: ProtoWireType { .lengthDelimited }
    public static var defaultValue: [UInt8] { [] }
    @inlinable public static func isDefault(_ v: [UInt8]) -> Bool { v.isEmpty }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> [UInt8] { try r.readBytes() }
    @inlinable public static func write(_ v: [UInt8], to w: inout ProtoWriter) { w.writeLengthDelimited(v) }
    @inlinable public static func size(of v: [UInt8]) -> Int { ProtoSize.lengthDelimited(v.count) }
}

public enum ProtoMessageKind<M: ProtoMessage>: ProtoFieldKind {
    public static var wireType: ProtoWireType { .lengthDelimited }
    public static var defaultValue: M { M() }
    @inlinable public static func isDefault(_ v: M) -> Bool { false }
    @inlinable public static func read(from r: inout ProtoReader, fieldNumber: Int) throws -> M {
        var m = M()
        try merge(&m, from: &r)
        return m
    }
    @inlinable public static func merge(_ m: inout M, from r: inout ProtoReader) throws {
        try r.readNested { try m.merge(from: &$0) }
    }
    @inlinable public static func write(_ v: M, to w: inout ProtoWriter) {
        w.writeVarint(UInt64(v.encodedSize))
        v.encode(to: &w)
    }
    @inlinable public static func size(of v: M) -> Int { ProtoSize.lengthDelimited(v.encodedSize) }
}
