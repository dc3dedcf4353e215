// The parts of google/protobuf/descriptor.proto that the generator and the
// JSON mapping read, decoded with the project's own codec. Field numbers are
// descriptor.proto's.

/// `FileDescriptorSet`, as `protoc --descriptor_set_out --include_imports` writes it.
public struct FileDescriptorSet {
    public var files: [FileDescriptor] = []

    public init(bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var reader = ProtoReader(buffer: buffer)
            var ignored = ProtoUnknownFields()
            while let tag = try reader.nextTag() {
                if tag.fieldNumber == 1, tag.wireType == .lengthDelimited {
                    files.append(try reader.readNested { try FileDescriptor(reader: &$0) })
                } else {
                    try reader.keepUnknown(tag, in: &ignored)
                }
            }
        }
    }
}

public struct FileDescriptor {
    public var name = ""
    public var package = ""
    public var dependencies: [String] = []
    public var messages: [MessageDescriptor] = []
    public var enums: [EnumDescriptor] = []
    public var services: [ServiceDescriptor] = []
    public var syntax = ""
    /// Leading comments by source path (descriptor field path), when protoc kept source info.
    public var comments: [[Int32]: String] = [:]
    /// The file's own encoding minus source info: what reflection serves.
    public var serializedWithoutSourceInfo: [UInt8] = []

    /// One serialized `FileDescriptorProto` (what `ProtoFileDescriptor.serialized` holds).
    public init(serialized bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { buffer in
            var reader = ProtoReader(buffer: buffer)
            return try FileDescriptor(reader: &reader)
        }
    }

    init(reader: inout ProtoReader) throws {
        var kept = ProtoUnknownFields()
        var unknown = ProtoUnknownFields()
        while let tag = try reader.nextTag() {
            if tag.fieldNumber == 9 {  // source_code_info: read for comments, not embedded
                guard tag.wireType == .lengthDelimited else { throw ProtoDecodingError.invalidWireType(tag.wireType.rawValue) }
                comments = try reader.readNested { try Self.readComments(&$0) }
                continue
            }
            // Copy every other field verbatim, then decode it from the copy.
            let before = kept.bytes.count
            try reader.keepUnknown(tag, in: &kept)
            let field = Array(kept.bytes[before...])
            try field.withUnsafeBytes { buffer in
                var r = ProtoReader(buffer: buffer)
                _ = try r.nextTag()
                switch tag.fieldNumber {
                case 1: try r.decodeSingular(ProtoString.self, tag, into: &name, unknown: &unknown)
                case 2: try r.decodeSingular(ProtoString.self, tag, into: &package, unknown: &unknown)
                case 3: try r.decodeRepeated(ProtoString.self, tag, into: &dependencies, unknown: &unknown)
                case 4: messages.append(try r.readNested { try MessageDescriptor(reader: &$0) })
                case 5: enums.append(try r.readNested { try EnumDescriptor(reader: &$0) })
                case 6: services.append(try r.readNested { try ServiceDescriptor(reader: &$0) })
                case 12: try r.decodeSingular(ProtoString.self, tag, into: &syntax, unknown: &unknown)
                default: try r.skipValue(tag)
                }
            }
        }
        serializedWithoutSourceInfo = kept.bytes
    }

    private static func readComments(_ reader: inout ProtoReader) throws -> [[Int32]: String] {
        var result: [[Int32]: String] = [:]
        var unknown = ProtoUnknownFields()
        while let tag = try reader.nextTag() {
            guard tag.fieldNumber == 1 else { try reader.skipValue(tag); continue }
            var path: [Int32] = []
            var leading = ""
            try reader.forEachNestedField { t, loc in
                switch t.fieldNumber {
                case 1: try loc.decodeRepeated(ProtoInt32.self, t, into: &path, unknown: &unknown)
                case 3: try loc.decodeSingular(ProtoString.self, t, into: &leading, unknown: &unknown)
                default: try loc.skipValue(t)
                }
            }
            if !leading.isEmpty { result[path] = leading }
        }
        return result
    }
}

public struct MessageDescriptor {
    public var name = ""
    public var fields: [FieldDescriptor] = []
    public var nestedMessages: [MessageDescriptor] = []
    public var enums: [EnumDescriptor] = []
    public var oneofNames: [String] = []
    public var isMapEntry = false

    init(reader: inout ProtoReader) throws {
        var unknown = ProtoUnknownFields()
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: try reader.decodeSingular(ProtoString.self, tag, into: &name, unknown: &unknown)
            case 2: fields.append(try reader.readNested { try FieldDescriptor(reader: &$0) })
            case 3: nestedMessages.append(try reader.readNested { try MessageDescriptor(reader: &$0) })
            case 4: enums.append(try reader.readNested { try EnumDescriptor(reader: &$0) })
            case 7:  // MessageOptions; map_entry = 7
                try reader.forEachNestedField { t, options in
                    if t.fieldNumber == 7 {
                        try options.decodeSingular(ProtoBool.self, t, into: &isMapEntry, unknown: &unknown)
                    } else { try options.skipValue(t) }
                }
            case 8:  // OneofDescriptorProto; name = 1
                var oneof = ""
                try reader.forEachNestedField { t, o in
                    if t.fieldNumber == 1 {
                        try o.decodeSingular(ProtoString.self, t, into: &oneof, unknown: &unknown)
                    } else { try o.skipValue(t) }
                }
                oneofNames.append(oneof)
            default: try reader.skipValue(tag)
            }
        }
    }
}

public struct FieldDescriptor {
    public enum Label: Int32, Sendable { case optional = 1, required = 2, repeated = 3 }
    /// descriptor.proto's FieldDescriptorProto.Type numbers.
    public enum Kind: Int32, Sendable {
        case double = 1, float, int64, uint64, int32, fixed64, fixed32, bool, string, group, message, bytes,
            uint32, `enum`, sfixed32, sfixed64, sint32, sint64
    }

    public var name = ""
    public var number: Int32 = 0
    public var label: Label = .optional
    public var kind: Kind = .int32
    /// Fully qualified, with a leading dot, for message and enum fields.
    public var typeName = ""
    public var oneofIndex: Int32?
    public var proto3Optional = false
    /// The JSON name protoc gave it (lowerCamelCase unless `json_name` was set); empty if none was recorded.
    public var jsonName = ""
    /// `[packed = false]` on a repeated scalar.
    public var packed: Bool?

    init(reader: inout ProtoReader) throws {
        var unknown = ProtoUnknownFields()
        var labelRaw: Int32 = 1
        var kindRaw: Int32 = 5
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: try reader.decodeSingular(ProtoString.self, tag, into: &name, unknown: &unknown)
            case 3: try reader.decodeSingular(ProtoInt32.self, tag, into: &number, unknown: &unknown)
            case 4: try reader.decodeSingular(ProtoInt32.self, tag, into: &labelRaw, unknown: &unknown)
            case 5: try reader.decodeSingular(ProtoInt32.self, tag, into: &kindRaw, unknown: &unknown)
            case 6: try reader.decodeSingular(ProtoString.self, tag, into: &typeName, unknown: &unknown)
            case 8:  // FieldOptions; packed = 2
                try reader.forEachNestedField { t, options in
                    if t.fieldNumber == 2 {
                        var p = false
                        try options.decodeSingular(ProtoBool.self, t, into: &p, unknown: &unknown)
                        packed = p
                    } else { try options.skipValue(t) }
                }
            case 9: try reader.decodeOptional(ProtoInt32.self, tag, into: &oneofIndex, unknown: &unknown)
            case 10: try reader.decodeSingular(ProtoString.self, tag, into: &jsonName, unknown: &unknown)
            case 17: try reader.decodeSingular(ProtoBool.self, tag, into: &proto3Optional, unknown: &unknown)
            default: try reader.skipValue(tag)
            }
        }
        guard let label = Label(rawValue: labelRaw) else { throw DescriptorError("label \(labelRaw) on \(name)") }
        guard let kind = Kind(rawValue: kindRaw) else { throw DescriptorError("type \(kindRaw) on \(name)") }
        self.label = label
        self.kind = kind
    }
}

public struct EnumDescriptor {
    public var name = ""
    public var values: [(name: String, number: Int32)] = []

    init(reader: inout ProtoReader) throws {
        var unknown = ProtoUnknownFields()
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: try reader.decodeSingular(ProtoString.self, tag, into: &name, unknown: &unknown)
            case 2:
                var valueName = ""
                var number: Int32 = 0
                try reader.forEachNestedField { t, v in
                    switch t.fieldNumber {
                    case 1: try v.decodeSingular(ProtoString.self, t, into: &valueName, unknown: &unknown)
                    case 2: try v.decodeSingular(ProtoInt32.self, t, into: &number, unknown: &unknown)
                    default: try v.skipValue(t)
                    }
                }
                values.append((valueName, number))
            default: try reader.skipValue(tag)
            }
        }
    }
}

public struct ServiceDescriptor {
    public struct Method {
        public var name = ""
        public var inputType = ""
        public var outputType = ""
        public var clientStreaming = false
        public var serverStreaming = false
    }

    public var name = ""
    public var methods: [Method] = []

    init(reader: inout ProtoReader) throws {
        var unknown = ProtoUnknownFields()
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: try reader.decodeSingular(ProtoString.self, tag, into: &name, unknown: &unknown)
            case 2:
                var m = Method()
                try reader.forEachNestedField { t, r in
                    switch t.fieldNumber {
                    case 1: try r.decodeSingular(ProtoString.self, t, into: &m.name, unknown: &unknown)
                    case 2: try r.decodeSingular(ProtoString.self, t, into: &m.inputType, unknown: &unknown)
                    case 3: try r.decodeSingular(ProtoString.self, t, into: &m.outputType, unknown: &unknown)
                    case 5: try r.decodeSingular(ProtoBool.self, t, into: &m.clientStreaming, unknown: &unknown)
                    case 6: try r.decodeSingular(ProtoBool.self, t, into: &m.serverStreaming, unknown: &unknown)
                    default: try r.skipValue(t)
                    }
                }
                methods.append(m)
            default: try reader.skipValue(tag)
            }
        }
    }
}

/// A descriptor this codebase cannot represent.
public struct DescriptorError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension ProtoReader {
    /// Calls `field` with each field of the next length-delimited (nested)
    /// message; `field` must read or skip the value.
    mutating func forEachNestedField(_ field: (ProtoTag, inout ProtoReader) throws -> Void) throws {
        try readNested { nested in
            while let tag = try nested.nextTag() { try field(tag, &nested) }
        }
    }
}
