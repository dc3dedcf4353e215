/// Field-level decoding used by generated `merge(from:)` implementations.
///
/// Each helper takes the tag just read. When the wire type is not the one the
/// schema declares, the field is kept as an unknown field, as the reference
/// implementations do, and the helper returns false.
extension ProtoReader {
    @inlinable @discardableResult
    public mutating func decodeSingular<K: ProtoFieldKind>(
        _: K.Type, _ tag: ProtoTag, into value: inout K.Value, unknown: inout ProtoUnknownFields
    ) throws -> Bool {
        guard tag.wireType == K.wireType else {
            try keepUnknown(tag, in: &unknown)
            return false
        }
        value = try K.read(from: &self, fieldNumber: tag.fieldNumber)
        return true
    }

    /// A field with explicit presence (`optional`).
    @inlinable
    public mutating func decodeOptional<K: ProtoFieldKind>(
        _: K.Type, _ tag: ProtoTag, into value: inout K.Value?, unknown: inout ProtoUnknownFields
    ) throws {
        var v = K.defaultValue
        if try decodeSingular(K.self, tag, into: &v, unknown: &unknown) { value = v }
    }

    /// Repeated scalars are accepted both packed and unpacked.
    @inlinable
    public mutating func decodeRepeated<K: ProtoFieldKind>(
        _: K.Type, _ tag: ProtoTag, into values: inout [K.Value], unknown: inout ProtoUnknownFields
    ) throws {
        if tag.wireType == K.wireType {
            values.append(try K.read(from: &self, fieldNumber: tag.fieldNumber))
        } else if tag.wireType == .lengthDelimited && K.wireType != .lengthDelimited {
            try readPacked(elementSize: K.wireType.fixedSize, fieldNumber: tag.fieldNumber, into: &values) {
                try K.read(from: &$0, fieldNumber: tag.fieldNumber)
            }
        } else {
            try keepUnknown(tag, in: &unknown)
        }
    }

    /// A singular message field; a second occurrence merges into the first.
    @inlinable @discardableResult
    public mutating func decodeMessage<M: ProtoMessage>(
        _ tag: ProtoTag, into value: inout M?, unknown: inout ProtoUnknownFields
    ) throws -> Bool {
        guard tag.wireType == .lengthDelimited else {
            try keepUnknown(tag, in: &unknown)
            return false
        }
        var m = value ?? M()
        try ProtoMessageKind<M>.merge(&m, from: &self)
        value = m
        return true
    }

    /// A singular message field stored indirectly (recursive message types).
    @inlinable
    public mutating func decodeMessage<M: ProtoMessage>(
        _ tag: ProtoTag, into value: inout ProtoIndirect<M>?, unknown: inout ProtoUnknownFields
    ) throws {
        var m = value?.unwrapped
        if try decodeMessage(tag, into: &m, unknown: &unknown), let m { value = ProtoIndirect(m) }
    }

    /// One entry of a map field (an embedded message with key = 1, value = 2).
    @inlinable
    public mutating func decodeMapEntry<K: ProtoMapKeyKind, V: ProtoFieldKind>(
        _: K.Type, _: V.Type, _ tag: ProtoTag, into map: inout [K.Value: V.Value],
        unknown: inout ProtoUnknownFields
    ) throws {
        guard tag.wireType == .lengthDelimited else {
            try keepUnknown(tag, in: &unknown)
            return
        }
        var key = K.defaultValue
        var value = V.defaultValue
        try readNested { entry in
            while let t = try entry.nextTag() {
                if t.fieldNumber == 1 && t.wireType == K.wireType {
                    key = try K.read(from: &entry, fieldNumber: 1)
                } else if t.fieldNumber == 2 && t.wireType == V.wireType {
                    value = try V.read(from: &entry, fieldNumber: 2)
                } else {
                    try entry.skipValue(t)
                }
            }
        }
        map[key] = value
    }
}
