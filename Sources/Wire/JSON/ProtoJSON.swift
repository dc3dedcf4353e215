import Foundation
import Synchronization

/// The canonical proto3 JSON mapping, driven by descriptors: any message of
/// `schema` goes from its binary encoding to JSON and back, with no
/// generated type. The gateway transcodes with it, `croupier call` prints
/// with it, and generated messages use it through `ProtoMessage.jsonString`.
///
/// Binary to JSON: fields by their JSON (lowerCamel) name, in field-number
/// order; fields without presence left out at their default; 64-bit
/// integers as strings; bytes as base64; enums by name (a number the schema
/// does not name stays a number); NaN and infinities as strings; unknown
/// fields dropped.
///
/// JSON to binary accepts what the mapping allows on input: JSON or proto
/// names, integers as numbers or strings, enums by name or number, bytes in
/// either base64 alphabet, `null` for "not set". It refuses an unknown field
/// (unless `ignoringUnknownFields`, which also skips an unknown enum name), a
/// field or a oneof set twice, and any value out of its type's range.
public struct ProtoJSON: Sendable {
    public let schema: ProtoSchema

    public init(schema: ProtoSchema) { self.schema = schema }

    /// The mapping for the messages of `file` and its imports, made once per file.
    public static func forFile(_ file: ProtoFileDescriptor) throws -> ProtoJSON {
        if let known = byFile.withLock({ $0[file.name] }) { return known }
        let made = ProtoJSON(schema: try ProtoSchema(compiled: file.withImports))
        byFile.withLock { $0[file.name] = made }
        return made
    }

    private static let byFile = Mutex<[String: ProtoJSON]>([:])

    /// A generated message as JSON.
    public func json<M: ProtoMessage>(_ message: M) throws -> String {
        try json(fromBinary: message.serializedBytes(), type: M.protoMessageName)
    }

    /// A generated message from JSON.
    public func message<M: ProtoMessage>(_ type: M.Type, fromJSON text: String, ignoringUnknownFields: Bool = false) throws -> M {
        try M(serializedBytes: try binary(fromJSON: text, type: M.protoMessageName, ignoringUnknownFields: ignoringUnknownFields))
    }

    // MARK: binary to JSON

    public func json(fromBinary bytes: [UInt8], type: String) throws -> String {
        try value(fromBinary: bytes, type: type).serialized
    }

    /// The same JSON as UTF-8 bytes (a response body).
    public func jsonBytes(fromBinary bytes: [UInt8], type: String) throws -> [UInt8] {
        try value(fromBinary: bytes, type: type).serializedBytes
    }

    public func value(fromBinary bytes: [UInt8], type: String) throws -> JSONValue {
        let message = try schema.message(type)
        return try bytes.withUnsafeBytes { buffer in
            var reader = ProtoReader(buffer: buffer)
            return try object(&reader, message, path: "", depth: 0)
        }
    }

    /// One message's fields as read (last one wins, messages merge, repeated append).
    private struct Seen {
        var singular: [Int: JSONValue] = [:]
        var messages: [Int: [UInt8]] = [:]
        var repeated: [Int: [JSONValue]] = [:]
        var maps: [Int: [(key: String, value: JSONValue)]] = [:]
    }

    /// Messages nested deeper than this are refused (a hostile encoding must not exhaust the stack).
    static let depthLimit = 100

    private func object(_ reader: inout ProtoReader, _ message: Message, path: String, depth: Int) throws -> JSONValue {
        guard depth <= Self.depthLimit else { throw ProtoJSONError(path: path, "messages nested deeper than \(Self.depthLimit)") }
        var seen = Seen()
        while let tag = try reader.nextTag() {
            guard let field = message.field(number: tag.fieldNumber) else {
                try reader.skipValue(tag)
                continue
            }
            let at = join(path, field.jsonName)
            if let oneof = field.oneof {  // setting one member clears the others
                for other in message.fields where other.oneof == oneof && other.number != field.number {
                    seen.singular[other.number] = nil
                    seen.messages[other.number] = nil
                }
            }
            if field.kind == .message {
                guard tag.wireType == .lengthDelimited else { throw ProtoJSONError(path: at, "wire type \(tag.wireType) for a message") }
                let bytes = try reader.readBytes()
                let type = try schema.message(field.typeName)
                if type.isMapEntry {
                    let (key, value) = try mapEntry(bytes, type, path: at, depth: depth + 1)
                    var entries = seen.maps[field.number, default: []]
                    if let i = entries.firstIndex(where: { $0.key == key }) { entries[i].value = value } else { entries.append((key, value)) }
                    seen.maps[field.number] = entries
                } else if field.isRepeated {
                    seen.repeated[field.number, default: []].append(try messageValue(bytes, type, path: at, depth: depth + 1))
                } else {
                    seen.messages[field.number, default: []] += bytes
                }
            } else if field.isRepeated && tag.wireType == .lengthDelimited && field.kind.isPackable {
                try reader.readNested { packed in
                    while !packed.isAtEnd { seen.repeated[field.number, default: []].append(try scalar(&packed, field, path: at).json) }
                }
            } else {
                try checkWireType(tag.wireType, field, path: at)
                let value = try scalar(&reader, field, path: at)
                if field.isRepeated {
                    seen.repeated[field.number, default: []].append(value.json)
                } else if field.hasPresence || !value.isDefault {
                    seen.singular[field.number] = value.json
                } else {
                    seen.singular[field.number] = nil
                }
            }
        }
        var members: [(key: String, value: JSONValue)] = []
        for field in message.fields {
            if let v = seen.singular[field.number] {
                members.append((field.jsonName, v))
            } else if let bytes = seen.messages[field.number] {
                members.append((field.jsonName, try messageValue(
                    bytes, try schema.message(field.typeName), path: join(path, field.jsonName), depth: depth + 1)))
            } else if let items = seen.repeated[field.number], !items.isEmpty {
                members.append((field.jsonName, .array(items)))
            } else if let entries = seen.maps[field.number], !entries.isEmpty {
                members.append((field.jsonName, .object(entries)))
            }
        }
        return .object(members)
    }

    private func messageValue(_ bytes: [UInt8], _ type: Message, path: String, depth: Int) throws -> JSONValue {
        try bytes.withUnsafeBytes { buffer in
            var nested = ProtoReader(buffer: buffer)
            return try object(&nested, type, path: path, depth: depth)
        }
    }

    private func mapEntry(_ bytes: [UInt8], _ entry: Message, path: String, depth: Int) throws -> (String, JSONValue) {
        guard let keyField = entry.field(number: 1), let valueField = entry.field(number: 2) else {
            throw ProtoJSONError(path: path, "map entry \(entry.name) lacks its key or value field")
        }
        let decoded = try messageValue(bytes, entry, path: path + "[]", depth: depth)
        guard case .object(let members) = decoded else { return ("", .null) }
        let key = members.first { $0.key == keyField.jsonName }?.value
        var value = members.first { $0.key == valueField.jsonName }?.value
        if value == nil { value = try defaultJSON(valueField) }
        switch key {
        case .string(let s)?: return (s, value!)
        case .number(let n)?: return (n, value!)
        case .bool(let b)?: return (b ? "true" : "false", value!)
        default: return (keyField.kind == .bool ? "false" : keyField.kind == .string ? "" : "0", value!)
        }
    }

    /// A map value that the binary left out: its type's default.
    private func defaultJSON(_ field: Field) throws -> JSONValue {
        switch field.kind {
        case .message: return .object([])
        case .enum: return try schema.enumType(field.typeName).name(of: 0).map(JSONValue.string) ?? .number("0")
        case .string, .bytes: return .string("")
        case .bool: return .bool(false)
        case .int64, .uint64, .sint64, .fixed64, .sfixed64: return .string("0")
        case .double, .float: return .number("0")
        default: return .number("0")
        }
    }

    private func checkWireType(_ wireType: ProtoWireType, _ field: Field, path: String) throws {
        let expected: ProtoWireType
        switch field.kind {
        case .double, .fixed64, .sfixed64: expected = .fixed64
        case .float, .fixed32, .sfixed32: expected = .fixed32
        case .string, .bytes, .message: expected = .lengthDelimited
        case .group: throw ProtoJSONError(path: path, "groups are not supported")
        default: expected = .varint
        }
        guard wireType == expected else { throw ProtoJSONError(path: path, "wire type \(wireType) where \(expected) was expected") }
    }

    private func scalar(_ r: inout ProtoReader, _ field: Field, path: String) throws -> (json: JSONValue, isDefault: Bool) {
        switch field.kind {
        case .int32:
            let v = Int32(truncatingIfNeeded: try r.readVarint())
            return (.number(String(v)), v == 0)
        case .uint32:
            let v = UInt32(truncatingIfNeeded: try r.readVarint())
            return (.number(String(v)), v == 0)
        case .sint32:
            let raw = UInt32(truncatingIfNeeded: try r.readVarint())
            let v = Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
            return (.number(String(v)), v == 0)
        case .int64:
            let v = Int64(bitPattern: try r.readVarint())
            return (.string(String(v)), v == 0)
        case .uint64:
            let v = try r.readVarint()
            return (.string(String(v)), v == 0)
        case .sint64:
            let raw = try r.readVarint()
            let v = Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
            return (.string(String(v)), v == 0)
        case .fixed32:
            let v = try r.readFixed32()
            return (.number(String(v)), v == 0)
        case .sfixed32:
            let v = Int32(bitPattern: try r.readFixed32())
            return (.number(String(v)), v == 0)
        case .fixed64:
            let v = try r.readFixed64()
            return (.string(String(v)), v == 0)
        case .sfixed64:
            let v = Int64(bitPattern: try r.readFixed64())
            return (.string(String(v)), v == 0)
        case .bool:
            let v = try r.readVarint() != 0
            return (.bool(v), !v)
        case .float:
            let v = Float(bitPattern: try r.readFixed32())
            return (Self.number(v.isFinite ? v.description : "", v.isNaN, v.sign == .minus), v.bitPattern == 0)
        case .double:
            let v = Double(bitPattern: try r.readFixed64())
            return (Self.number(v.isFinite ? v.description : "", v.isNaN, v.sign == .minus), v.bitPattern == 0)
        case .string:
            let v = try r.readString(fieldNumber: field.number)
            return (.string(v), v.isEmpty)
        case .bytes:
            let v = try r.readBytes()
            return (.string(Data(v).base64EncodedString()), v.isEmpty)
        case .enum:
            let v = Int32(truncatingIfNeeded: try r.readVarint())
            let name = try schema.enumType(field.typeName).name(of: v)
            return (name.map(JSONValue.string) ?? .number(String(v)), v == 0)
        case .message, .group:
            throw ProtoJSONError(path: path, "not a scalar")
        }
    }

    /// A finite float's text as a JSON number; NaN and the infinities as the mapping's strings.
    private static func number(_ finite: String, _ isNaN: Bool, _ negative: Bool) -> JSONValue {
        if isNaN { return .string("NaN") }
        if finite.isEmpty { return .string(negative ? "-Infinity" : "Infinity") }
        return .number(finite)
    }

    private func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    public typealias Message = ProtoSchema.Message
    public typealias Field = ProtoSchema.Field
}

extension FieldDescriptor.Kind {
    /// Repeated fields of these kinds may come packed.
    var isPackable: Bool {
        switch self {
        case .string, .bytes, .message, .group: return false
        default: return true
        }
    }
}

extension ProtoSchema {
    func enumType(_ name: String) throws -> Enum {
        guard let e = enums[name] else { throw ProtoJSONError(path: "", "unknown enum type \(name)") }
        return e
    }
}

extension ProtoMessage {
    /// This message in the canonical proto3 JSON mapping (generated messages: see `protoFile`).
    public func jsonString() throws -> String { try Self.json().json(self) }

    /// A message from proto3 JSON; unknown fields refused unless `ignoringUnknownFields`.
    public init(jsonString: String, ignoringUnknownFields: Bool = false) throws {
        self = try Self.json().message(Self.self, fromJSON: jsonString, ignoringUnknownFields: ignoringUnknownFields)
    }

    private static func json() throws -> ProtoJSON {
        guard let file = protoFile else { throw ProtoJSONError(path: "", "\(protoMessageName) carries no descriptor (not generated)") }
        return try ProtoJSON.forFile(file)
    }
}
