import Foundation

extension ProtoJSON {
    /// The binary encoding of the message of `type` that `json` describes.
    public func binary(fromJSON json: String, type: String, ignoringUnknownFields: Bool = false) throws -> [UInt8] {
        let value: JSONValue
        do { value = try JSONValue(parsing: json) } catch let e as JSONSyntaxError { throw ProtoJSONError(path: "", e.description) }
        return try binary(from: value, type: type, ignoringUnknownFields: ignoringUnknownFields)
    }

    public func binary(from value: JSONValue, type: String, ignoringUnknownFields: Bool = false) throws -> [UInt8] {
        var sink = ByteSink()
        try Encoding(json: self, ignoringUnknown: ignoringUnknownFields).message(value, try schema.message(type), path: "", into: &sink)
        return sink.bytes
    }
}

/// Protobuf's binary encoding, appended to a growable buffer.
struct ByteSink {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ number: Int, _ wireType: ProtoWireType) { varint(UInt64(number) << 3 | UInt64(wireType.rawValue)) }

    mutating func fixed32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func fixed64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }

    mutating func lengthDelimited(_ payload: [UInt8]) {
        varint(UInt64(payload.count))
        bytes += payload
    }
}

private struct Encoding {
    let json: ProtoJSON
    let ignoringUnknown: Bool

    var schema: ProtoSchema { json.schema }

    func message(_ value: JSONValue, _ message: ProtoSchema.Message, path: String, into out: inout ByteSink) throws {
        guard case .object(let members) = value else {
            throw ProtoJSONError(path: path, "expected an object for \(message.name), found \(value.kindName)")
        }
        var encoded: [Int: ByteSink] = [:]
        var oneofs: [String: String] = [:]
        for (key, item) in members {
            let at = path.isEmpty ? key : path + "." + key
            guard let field = message.field(named: key) else {
                if ignoringUnknown { continue }
                throw ProtoJSONError(path: at, "no field \"\(key)\" in \(message.name)")
            }
            guard encoded[field.number] == nil else { throw ProtoJSONError(path: at, "field \(field.name) is set twice") }
            if case .null = item { continue }  // null: not set
            if let oneof = field.oneof {
                if let other = oneofs[oneof] { throw ProtoJSONError(path: at, "oneof \(oneof) is set twice (\(other) and \(key))") }
                oneofs[oneof] = key
            }
            var sink = ByteSink()
            if try !self.field(item, field, path: at, into: &sink) { continue }
            encoded[field.number] = sink
        }
        for number in encoded.keys.sorted() { out.bytes += encoded[number]!.bytes }
    }

    /// Encodes one field's JSON value (tags included); false if it encodes to nothing (skipped enum name).
    private func field(_ value: JSONValue, _ field: ProtoSchema.Field, path: String, into out: inout ByteSink) throws -> Bool {
        if field.kind == .message, let entry = schema.messages[field.typeName], entry.isMapEntry {
            guard case .object(let entries) = value else { throw ProtoJSONError(path: path, "expected an object (a map), found \(value.kindName)") }
            guard let keyField = entry.field(number: 1), let valueField = entry.field(number: 2) else {
                throw ProtoJSONError(path: path, "map entry \(entry.name) lacks its key or value field")
            }
            var seenKeys = Set<String>()
            for (key, item) in entries {
                let at = "\(path)[\(JSONValue.string(key).serialized)]"
                guard seenKeys.insert(key).inserted else { throw ProtoJSONError(path: at, "map key set twice") }
                if case .null = item { throw ProtoJSONError(path: at, "a map value cannot be null") }
                var pair = ByteSink()
                _ = try single(mapKey(key, keyField, path: at), keyField, path: at, into: &pair, always: true)
                guard try single(item, valueField, path: at, into: &pair, always: true) else { continue }
                out.tag(field.number, .lengthDelimited)
                out.lengthDelimited(pair.bytes)
            }
            return true
        }
        if field.isRepeated {
            guard case .array(let items) = value else { throw ProtoJSONError(path: path, "expected an array, found \(value.kindName)") }
            for (i, item) in items.enumerated() {
                if case .null = item { throw ProtoJSONError(path: "\(path)[\(i)]", "an array element cannot be null") }
                _ = try single(item, field, path: "\(path)[\(i)]", into: &out, always: true)
            }
            return true
        }
        return try single(value, field, path: path, into: &out, always: field.hasPresence)
    }

    /// A map key's JSON text as the key field's value.
    private func mapKey(_ key: String, _ field: ProtoSchema.Field, path: String) throws -> JSONValue {
        switch field.kind {
        case .string: return .string(key)
        case .bool:
            guard key == "true" || key == "false" else { throw ProtoJSONError(path: path, "a bool map key must be true or false") }
            return .bool(key == "true")
        default: return .string(key)  // integers: parsed from the string below
        }
    }

    /// Tag and value of one (non-repeated, or one element of a repeated) field. Defaults of fields
    /// without presence are left out unless `always`. False if nothing was written.
    private func single(_ value: JSONValue, _ field: ProtoSchema.Field, path: String, into out: inout ByteSink, always: Bool) throws -> Bool {
        let n = field.number
        switch field.kind {
        case .message:
            var nested = ByteSink()
            try message(value, try schema.message(field.typeName), path: path, into: &nested)
            out.tag(n, .lengthDelimited)
            out.lengthDelimited(nested.bytes)
        case .int32, .sint32, .sfixed32, .uint32, .fixed32, .int64, .sint64, .sfixed64, .uint64, .fixed64:
            let v = try integer(value, field.kind, path: path)
            guard always || v != 0 else { return false }
            switch field.kind {
            case .int32, .int64: out.tag(n, .varint); out.varint(UInt64(bitPattern: Int64(truncatingIfNeeded: v)))
            case .uint32, .uint64: out.tag(n, .varint); out.varint(UInt64(truncatingIfNeeded: v))
            case .sint32, .sint64:
                let s = Int64(truncatingIfNeeded: v)
                out.tag(n, .varint)
                out.varint(UInt64(bitPattern: (s << 1) ^ (s >> 63)))
            case .fixed32, .sfixed32: out.tag(n, .fixed32); out.fixed32(UInt32(truncatingIfNeeded: v))
            default: out.tag(n, .fixed64); out.fixed64(UInt64(truncatingIfNeeded: v))
            }
        case .float, .double:
            let v = try floating(value, path: path)
            if field.kind == .float {
                guard !v.isFinite || Float(v).isFinite else {  // 3.4028235e38 rounds to the largest float
                    throw ProtoJSONError(path: path, "\(v) is out of range for a float")
                }
                let f = Float(v)
                guard always || f.bitPattern != 0 else { return false }
                out.tag(n, .fixed32)
                out.fixed32(f.bitPattern)
            } else {
                guard always || v.bitPattern != 0 else { return false }
                out.tag(n, .fixed64)
                out.fixed64(v.bitPattern)
            }
        case .bool:
            guard case .bool(let b) = value else { throw ProtoJSONError(path: path, "expected true or false, found \(value.kindName)") }
            guard always || b else { return false }
            out.tag(n, .varint)
            out.varint(b ? 1 : 0)
        case .string:
            guard case .string(let s) = value else { throw ProtoJSONError(path: path, "expected a string, found \(value.kindName)") }
            guard always || !s.isEmpty else { return false }
            out.tag(n, .lengthDelimited)
            out.lengthDelimited(Array(s.utf8))
        case .bytes:
            guard case .string(let s) = value, let data = Self.base64(s) else {
                throw ProtoJSONError(path: path, "expected base64 text, found \(value.kindName == "a string" ? "text that is not base64" : value.kindName)")
            }
            guard always || !data.isEmpty else { return false }
            out.tag(n, .lengthDelimited)
            out.lengthDelimited(data)
        case .enum:
            let type = try schema.enumType(field.typeName)
            let number: Int32
            switch value {
            case .string(let name):
                guard let known = type.number(of: name) else {
                    if ignoringUnknown { return false }
                    throw ProtoJSONError(path: path, "\"\(name)\" is not a value of \(type.name)")
                }
                number = known
            case .number:
                number = Int32(try integer(value, .int32, path: path))
            default: throw ProtoJSONError(path: path, "expected an enum name or number, found \(value.kindName)")
            }
            guard always || number != 0 else { return false }
            out.tag(n, .varint)
            out.varint(UInt64(bitPattern: Int64(number)))
        case .group:
            throw ProtoJSONError(path: path, "groups are not supported")
        }
        return true
    }

    /// An integer field's value from a JSON number or string, checked against the kind's range.
    /// Returned as the bits it encodes: signed kinds as Int64, unsigned ones in the same 64 bits.
    private func integer(_ value: JSONValue, _ kind: FieldDescriptor.Kind, path: String) throws -> Int64 {
        let text: String
        switch value {
        case .number(let t): text = t
        case .string(let t): text = t
        default: throw ProtoJSONError(path: path, "expected an integer, found \(value.kindName)")
        }
        let unsigned = [.uint32, .uint64, .fixed32, .fixed64].contains(kind)
        let wide = [.int64, .uint64, .sint64, .fixed64, .sfixed64].contains(kind)
        func bad(_ why: String = "is not an integer") -> ProtoJSONError { ProtoJSONError(path: path, "\"\(text)\" \(why)") }
        var exact: (signed: Int64?, unsigned: UInt64?)
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        if !digits.isEmpty, digits.allSatisfy(\.isASCIIDigitForJSON) {
            let sign = text.hasPrefix("-") ? "-" : ""
            exact = (Int64(sign + digits), sign.isEmpty ? UInt64(digits) : nil)
            if exact.signed == nil && exact.unsigned == nil { throw bad("is out of range") }
        } else if case .number? = (try? JSONValue(parsing: text)), let d = Double(text), d.isFinite {  // 1e2, 5.0, quoted or not
            guard d.rounded() == d else { throw bad() }
            guard d >= -9.3e18, d <= 1.85e19 else { throw bad("is out of range") }
            exact = (d >= -9.2e18 && d <= 9.2e18 ? Int64(d) : nil, d >= 0 && d < 1.8e19 ? UInt64(d) : nil)
        } else {
            throw bad()
        }
        if unsigned {
            guard let u = exact.unsigned ?? exact.signed.flatMap({ $0 >= 0 ? UInt64($0) : nil }) else { throw bad("is out of range") }
            guard wide || u <= UInt64(UInt32.max) else { throw bad("is out of range") }
            return Int64(bitPattern: u)
        }
        guard let s = exact.signed else { throw bad("is out of range") }
        guard wide || (Int64(Int32.min)...Int64(Int32.max)).contains(s) else { throw bad("is out of range") }
        return s
    }

    private func floating(_ value: JSONValue, path: String) throws -> Double {
        switch value {
        case .number(let t):
            guard let d = Double(t) else { throw ProtoJSONError(path: path, "\"\(t)\" is not a number") }
            guard d.isFinite else { throw ProtoJSONError(path: path, "\(t) is out of range") }
            return d
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let t):
            guard let first = t.first, first.isASCIIDigitForJSON || first == "-" || first == ".", let d = Double(t), d.isFinite else {
                throw ProtoJSONError(path: path, "\"\(t)\" is not a number")
            }
            return d
        default: throw ProtoJSONError(path: path, "expected a number, found \(value.kindName)")
        }
    }

    /// Standard or URL-safe base64, padded or not.
    static func base64(_ text: String) -> [UInt8]? {
        // On the bytes: Foundation's string search costs more than the decoding.
        var chars = text.utf8.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "+") : $0 == UInt8(ascii: "_") ? UInt8(ascii: "/") : $0 }
        if chars.count % 4 != 0 { chars += [UInt8](repeating: UInt8(ascii: "="), count: 4 - chars.count % 4) }
        return Data(base64Encoded: Data(chars)).map { [UInt8]($0) }
    }
}

extension Character {
    fileprivate var isASCIIDigitForJSON: Bool { ("0"..."9").contains(self) }
}
