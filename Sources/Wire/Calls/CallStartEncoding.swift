/// CALL_START as a client writes it: the fields of `croupier.wire.v1.CallStart`
/// (method 1, timeout 2, metadata entries 3) written straight from the
/// call's `Metadata`, with no generated message per entry on the way (a
/// gateway sends several entries on every call). Reading is symmetric:
/// `merge` reads entries in place, as the server's `parseCallStart` does.
struct CallStartEncoding: ProtoMessage {
    static let protoMessageName = "croupier.wire.v1.CallStart"
    static var protoFile: ProtoFileDescriptor? { nil }

    var method = ""
    var timeoutMicros: UInt64 = 0
    var metadata = Metadata()
    var unknownFields = ProtoUnknownFields()

    init() {}

    /// The CALL_START of a call to `method`: its path, the time left until the deadline, and the metadata.
    init(_ method: MethodDescriptor, timeoutMicros: UInt64?, metadata: Metadata) {
        self.method = method.path
        self.timeoutMicros = timeoutMicros ?? 0
        self.metadata = metadata
    }

    mutating func merge(from reader: inout ProtoReader) throws {
        while let tag = try reader.nextTag() {
            switch (tag.fieldNumber, tag.wireType) {
            case (1, .lengthDelimited): method = try reader.readString(fieldNumber: 1)
            case (2, .varint): timeoutMicros = try reader.readVarint()
            case (3, .lengthDelimited): try reader.readNested { r in try metadata.appendWireEntry(&r) }
            default: try reader.skipValue(tag)
            }
        }
    }

    func encode(to writer: inout ProtoWriter) {
        if !method.isEmpty {
            writer.writeTag(1, .lengthDelimited)
            writer.writeLengthDelimited(method)
        }
        if timeoutMicros != 0 {
            writer.writeTag(2, .varint)
            writer.writeVarint(timeoutMicros)
        }
        for entry in metadata.entries {
            writer.writeTag(3, .lengthDelimited)
            writer.writeVarint(UInt64(Self.size(of: entry)))
            writer.writeTag(1, .lengthDelimited)
            writer.writeLengthDelimited(entry.key)
            switch entry.value {
            case .text(let text):
                writer.writeTag(2, .lengthDelimited)
                writer.writeLengthDelimited(text)
            case .binary(let bytes):
                writer.writeTag(3, .lengthDelimited)
                writer.writeLengthDelimited(bytes)
            }
        }
    }

    var encodedSize: Int {
        var size = 0
        if !method.isEmpty { size &+= 1 &+ ProtoSize.lengthDelimited(method.utf8.count) }
        if timeoutMicros != 0 { size &+= 1 &+ ProtoSize.varint(timeoutMicros) }
        for entry in metadata.entries { size &+= 1 &+ ProtoSize.lengthDelimited(Self.size(of: entry)) }
        return size
    }

    /// One MetadataEntry's bytes: the key (field 1), then its text (2) or binary (3) value.
    private static func size(of entry: (key: String, value: Metadata.Value)) -> Int {
        let value = switch entry.value {
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.count
        }
        return 2 &+ ProtoSize.lengthDelimited(entry.key.utf8.count) &+ ProtoSize.lengthDelimited(value)
    }
}
