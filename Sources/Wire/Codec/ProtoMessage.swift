/// A generated protobuf message: a value type that decodes by merging fields
/// from a reader and encodes into a writer sized by `encodedSize`.
///
/// `merge(from:)` is the primitive because protobuf semantics are merge
/// semantics: a singular message field that appears twice is merged, a
/// repeated field is appended to.
public protocol ProtoMessage: Sendable, Equatable {
    /// The fully qualified proto name, e.g. `grpc.testing.SimpleRequest`.
    static var protoMessageName: String { get }

    init()
    mutating func merge(from reader: inout ProtoReader) throws
    func encode(to writer: inout ProtoWriter)
    /// Exact number of bytes `encode(to:)` writes.
    var encodedSize: Int { get }
    var unknownFields: ProtoUnknownFields { get set }
    /// The .proto file that defines it (generated messages), for the JSON
    /// mapping; nil for a hand-written message.
    static var protoFile: ProtoFileDescriptor? { get }
}

extension ProtoMessage {
    public static var protoFile: ProtoFileDescriptor? { nil }
}

extension ProtoMessage {
    /// Decodes a message from the bytes in `buffer`.
    @inlinable
    public init(buffer: UnsafeRawBufferPointer, recursionLimit: Int = ProtoReader.defaultRecursionLimit) throws {
        self.init()
        var reader = ProtoReader(buffer: buffer, recursionLimit: recursionLimit)
        try merge(from: &reader)
    }

    /// Decodes a message from contiguous bytes (`[UInt8]`, `ArraySlice<UInt8>`, ...).
    @inlinable
    public init<Bytes: Collection<UInt8>>(serializedBytes bytes: Bytes) throws {
        if let decoded = try bytes.withContiguousStorageIfAvailable({ try Self(buffer: UnsafeRawBufferPointer($0)) }) {
            self = decoded
        } else {
            self = try Array(bytes).withUnsafeBytes { try Self(buffer: $0) }
        }
    }

    /// Decodes a message from an array (the common case, without the generic detour).
    @inlinable
    public init(serializedBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try Self(buffer: $0) }
    }

    /// The encoding of this message, in one exactly sized allocation.
    ///
    /// Output is deterministic: fields in field-number order, map entries
    /// sorted by key, unknown fields last.
    @inlinable
    public func serializedBytes() -> [UInt8] {
        let size = encodedSize
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var writer = ProtoWriter(buffer: UnsafeMutableRawBufferPointer(buffer))
            encode(to: &writer)
            precondition(writer.bytesWritten == size, "\(Self.protoMessageName): encodedSize disagrees with encode")
            initialized = size
        }
    }

    /// Encodes into caller-provided memory of at least `encodedSize` bytes; returns bytes written.
    @inlinable
    public func encode(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var writer = ProtoWriter(buffer: buffer)
        encode(to: &writer)
        return writer.bytesWritten
    }
}

/// A generated proto3 enum. Enums are open: a number the schema does not
/// name decodes to an `unrecognized` case and encodes back unchanged.
public protocol ProtoEnum: Sendable, Hashable {
    init(protoValue: Int32)
    var protoValue: Int32 { get }
}

/// Storage for a singular message field whose type can contain itself
/// (directly or through other messages): the indirect case boxes the value
/// so the containing struct has a finite size, with value semantics kept.
public enum ProtoIndirect<Value: Sendable & Equatable>: Sendable, Equatable {
    indirect case value(Value)

    @inlinable public init(_ value: Value) { self = .value(value) }
    @inlinable public var unwrapped: Value {
        switch self { case .value(let v): return v }
    }
}

extension ProtoMessage {
    /// Builds a message in one expression: `Foo.with { $0.id = 7 }`.
    @inlinable
    public static func with(_ populate: (inout Self) throws -> Void) rethrows -> Self {
        var m = Self()
        try populate(&m)
        return m
    }
}
