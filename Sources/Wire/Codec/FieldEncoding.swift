/// Field-level encoding and sizing used by generated `encode(to:)` and
/// `encodedSize`. Each writer helper has a size twin below; the two must
/// agree byte for byte (the writer traps if they do not).
extension ProtoWriter {
    /// proto3 implicit presence: the default value is not written.
    @inlinable
    public mutating func writeSingular<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ value: K.Value) {
        if !K.isDefault(value) { writeField(K.self, field, value) }
    }

    /// Explicit presence (`optional`, oneof members, messages): always written.
    @inlinable
    public mutating func writeField<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ value: K.Value) {
        writeTag(field, K.wireType)
        K.write(value, to: &self)
    }

    @inlinable
    public mutating func writeMessage<M: ProtoMessage>(_ field: Int, _ value: M) {
        writeField(ProtoMessageKind<M>.self, field, value)
    }

    /// Scalars are packed (proto3 default); strings, bytes and messages repeat the tag.
    @inlinable
    public mutating func writeRepeated<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ values: [K.Value]) {
        guard !values.isEmpty else { return }
        if K.wireType == .lengthDelimited {
            for v in values { writeField(K.self, field, v) }
        } else {
            writeTag(field, .lengthDelimited)
            writeVarint(UInt64(ProtoSize.packedPayload(K.self, values)))
            for v in values { K.write(v, to: &self) }
        }
    }

    /// A repeated scalar declared `[packed = false]`: one tag per element.
    @inlinable
    public mutating func writeRepeatedUnpacked<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ values: [K.Value]) {
        for v in values { writeField(K.self, field, v) }
    }

    /// Entries sorted by key so equal maps always encode to equal bytes.
    @inlinable
    public mutating func writeMap<K: ProtoMapKeyKind, V: ProtoFieldKind>(
        _: K.Type, _: V.Type, _ field: Int, _ map: [K.Value: V.Value]
    ) {
        guard !map.isEmpty else { return }
        for key in map.keys.sorted(by: K.precedes) {
            let value = map[key]!
            writeTag(field, .lengthDelimited)
            writeVarint(UInt64(ProtoSize.mapEntryPayload(K.self, V.self, key, value)))
            writeField(K.self, 1, key)
            writeField(V.self, 2, value)
        }
    }
}

extension ProtoSize {
    @inlinable
    public static func singular<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ value: K.Value) -> Int {
        K.isDefault(value) ? 0 : self.field(K.self, field, value)
    }

    @inlinable
    public static func field<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ value: K.Value) -> Int {
        tag(field) &+ K.size(of: value)
    }

    @inlinable
    public static func message<M: ProtoMessage>(_ field: Int, _ value: M) -> Int {
        self.field(ProtoMessageKind<M>.self, field, value)
    }

    @inlinable
    public static func repeated<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ values: [K.Value]) -> Int {
        guard !values.isEmpty else { return 0 }
        if K.wireType == .lengthDelimited {
            var total = 0
            for v in values { total &+= K.size(of: v) }
            return total &+ tag(field) &* values.count
        }
        return tag(field) &+ lengthDelimited(packedPayload(K.self, values))
    }

    @inlinable
    public static func repeatedUnpacked<K: ProtoFieldKind>(_: K.Type, _ field: Int, _ values: [K.Value]) -> Int {
        var total = 0
        for v in values { total &+= self.field(K.self, field, v) }
        return total
    }

    @inlinable
    public static func packedPayload<K: ProtoFieldKind>(_: K.Type, _ values: [K.Value]) -> Int {
        switch K.wireType {
        case .fixed32: return 4 &* values.count
        case .fixed64: return 8 &* values.count
        default:
            var total = 0
            for v in values { total &+= K.size(of: v) }
            return total
        }
    }

    @inlinable
    public static func map<K: ProtoMapKeyKind, V: ProtoFieldKind>(
        _: K.Type, _: V.Type, _ field: Int, _ map: [K.Value: V.Value]
    ) -> Int {
        var total = 0
        for (k, v) in map { total &+= tag(field) &+ lengthDelimited(mapEntryPayload(K.self, V.self, k, v)) }
        return total
    }

    @inlinable
    public static func mapEntryPayload<K: ProtoMapKeyKind, V: ProtoFieldKind>(
        _: K.Type, _: V.Type, _ key: K.Value, _ value: V.Value
    ) -> Int {
        1 &+ K.size(of: key) &+ 1 &+ V.size(of: value)
    }
}
