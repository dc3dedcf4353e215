import Wire

/// Everything the emitter needs to know about one field, decided once so the
/// declaration, decoding, encoding and size code are generated from the same facts.
struct FieldPlan {
    enum Shape {
        /// proto3 implicit presence: plain value, default not written.
        case singular
        /// `optional` scalar: Swift optional, written when set.
        case optional
        /// Singular message: Swift optional.
        case message
        /// Singular message whose type can contain this message: boxed storage.
        case indirectMessage
        case repeated(packed: Bool)
        case map(keyKind: String, valueKind: String)
        /// Member of a real oneof, by index into the message's oneof list.
        case oneofMember(Int)
    }

    let descriptor: FieldDescriptor
    let name: String  // unescaped Swift property name
    let shape: Shape
    /// The `ProtoFieldKind` type expression, e.g. `ProtoInt32`, `ProtoMessageKind<Foo>`.
    let kind: String
    /// The Swift type of one value (element type for repeated; entry types for maps handled in shape).
    let valueType: String
    let isMessageValue: Bool
    /// Default for `.singular` properties.
    let defaultExpression: String

    var number: Int { Int(descriptor.number) }
    var declName: String { Naming.escaped(name) }

    static func scalarKind(_ kind: FieldDescriptor.Kind) -> (kind: String, type: String, zero: String)? {
        switch kind {
        case .double: return ("ProtoDouble", "Double", "0")
        case .float: return ("ProtoFloat", "Float", "0")
        case .int64: return ("ProtoInt64", "Int64", "0")
        case .uint64: return ("ProtoUInt64", "UInt64", "0")
        case .int32: return ("ProtoInt32", "Int32", "0")
        case .fixed64: return ("ProtoFixed64", "UInt64", "0")
        case .fixed32: return ("ProtoFixed32", "UInt32", "0")
        case .bool: return ("ProtoBool", "Bool", "false")
        case .string: return ("ProtoString", "String", "\"\"")
        case .bytes: return ("ProtoBytes", "[UInt8]", "[]")
        case .uint32: return ("ProtoUInt32", "UInt32", "0")
        case .sfixed32: return ("ProtoSFixed32", "Int32", "0")
        case .sfixed64: return ("ProtoSFixed64", "Int64", "0")
        case .sint32: return ("ProtoSInt32", "Int32", "0")
        case .sint64: return ("ProtoSInt64", "Int64", "0")
        case .enum, .message, .group: return nil
        }
    }

    /// Kind expression, Swift type and zero value of a field's value type.
    static func valueKind(_ f: FieldDescriptor, symbols: SymbolTable) throws -> (kind: String, type: String, zero: String) {
        if let s = scalarKind(f.kind) { return s }
        switch f.kind {
        case .enum:
            let t = try symbols.swiftName(f.typeName)
            return ("ProtoEnumKind<\(t)>", t, symbols.enumZeroCase(f.typeName).map { ".\($0)" } ?? "\(t)(protoValue: 0)")
        case .message:
            let t = try symbols.swiftName(f.typeName)
            return ("ProtoMessageKind<\(t)>", t, "\(t)()")
        default:
            throw GeneratorError.unsupported("groups (field \(f.name))")
        }
    }

    init(_ f: FieldDescriptor, fullName: String, realOneofs: [Int: Int], symbols: SymbolTable) throws {
        descriptor = f
        name = Naming.fieldName(f.name)
        let (kind, type, zero) = try Self.valueKind(f, symbols: symbols)
        isMessageValue = f.kind == .message
        defaultExpression = zero

        if f.label == .repeated, f.kind == .message, let entry = symbols.messageDescriptor(f.typeName), entry.isMapEntry {
            let key = entry.fields.first { $0.number == 1 }!
            let value = entry.fields.first { $0.number == 2 }!
            let k = try Self.valueKind(key, symbols: symbols)
            let v = try Self.valueKind(value, symbols: symbols)
            shape = .map(keyKind: k.kind, valueKind: v.kind)
            self.kind = kind
            valueType = "[\(k.type): \(v.type)]"
            return
        }
        self.kind = kind
        valueType = type
        if f.label == .repeated {
            shape = .repeated(packed: f.packed ?? true)
        } else if let index = f.oneofIndex, let real = realOneofs[Int(index)] {
            shape = .oneofMember(real)
        } else if f.kind == .message {
            shape = symbols.reaches(from: f.typeName, to: "." + fullName) ? .indirectMessage : .message
        } else if f.proto3Optional {
            shape = .optional
        } else {
            shape = .singular
        }
    }

    /// The Swift type of the property.
    var propertyType: String {
        switch shape {
        case .singular: return valueType
        case .optional, .message, .indirectMessage: return valueType + "?"
        case .repeated: return "[\(valueType)]"
        case .map: return valueType
        case .oneofMember: return valueType
        }
    }
}
