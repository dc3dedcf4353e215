import Wire

/// Emits a message as a Swift value type conforming to `ProtoMessage`,
/// with its nested messages, enums and oneofs as nested types.
struct MessageEmitter {
    let symbols: SymbolTable
    let comments: [[Int32]: String]
    let access: String
    /// The file's `ProtoFileDescriptor` member name.
    let fileStem: String

    /// `declaredName` is the Swift name of the type: package-prefixed at top
    /// level, the plain proto name when nested.
    func emit(_ m: MessageDescriptor, declaredName: String, fullName: String, path: [Int32], into w: inout CodeWriter) throws {
        // Oneofs that hold a proto3 `optional` are synthetic: not Swift enums.
        var realOneofs: [Int: Int] = [:]
        var oneofs: [(name: String, members: [FieldPlan])] = []
        for (i, name) in m.oneofNames.enumerated()
        where !m.fields.contains(where: { $0.oneofIndex == Int32(i) && $0.proto3Optional }) {
            realOneofs[i] = oneofs.count
            oneofs.append((name, []))
        }
        let plans = try m.fields.map {
            try FieldPlan($0, fullName: fullName, realOneofs: realOneofs, symbols: symbols)
        }
        for p in plans { if case .oneofMember(let i) = p.shape { oneofs[i].members.append(p) } }
        w.doc(comments[path])
        try w.block("\(access) struct \(declaredName): ProtoMessage") { w in
            w.line("\(access) static let protoMessageName = \(Naming.literal(fullName))")
            w.line("\(access) static var protoFile: ProtoFileDescriptor? { .\(fileStem) }")
            w.line()
            for (i, p) in plans.enumerated() { declare(p, path: path + [2, Int32(i)], into: &w) }
            for o in oneofs {
                w.line("\(access) var \(Naming.escaped(Naming.fieldName(o.name))): \(oneofType(o.name))? = nil")
            }
            w.line("\(access) var unknownFields = ProtoUnknownFields()")
            w.line()
            w.line("\(access) init() {}")
            for o in oneofs { w.line(); emitOneof(o.name, o.members, container: fullName, into: &w) }
            for (i, nested) in m.nestedMessages.enumerated() where !nested.isMapEntry {
                w.line()
                try emit(nested, declaredName: nested.name, fullName: fullName + "." + nested.name, path: path + [3, Int32(i)], into: &w)
            }
            for (i, e) in m.enums.enumerated() {
                w.line()
                EnumEmitter(access: access, comments: comments).emit(e, declaredName: e.name, path: path + [4, Int32(i)], into: &w)
            }
            w.line()
            emitMerge(plans, oneofs: oneofs.map(\.name), into: &w)
            w.line()
            emitEncode(plans, oneofs: oneofs.map(\.name), into: &w)
            w.line()
            emitSize(plans, oneofs: oneofs.map(\.name), into: &w)
        }
    }

    private func oneofType(_ name: String) -> String { "OneOf_" + Naming.upperCamel(name) }

    private func oneofProperty(_ p: FieldPlan, _ oneofs: [String]) -> String {
        guard case .oneofMember(let i) = p.shape else { fatalError("not a oneof member") }
        return "self." + Naming.escaped(Naming.fieldName(oneofs[i]))
    }

    private func declare(_ p: FieldPlan, path: [Int32], into w: inout CodeWriter) {
        switch p.shape {
        case .oneofMember: return  // declared as an accessor on the oneof
        case .indirectMessage:
            w.doc(comments[path])
            w.block("\(access) var \(p.declName): \(p.propertyType)") { w in
                w.line("get { _\(p.name)?.unwrapped }")
                w.line("set { _\(p.name) = newValue.map { ProtoIndirect($0) } }")
            }
            w.line("private var _\(p.name): ProtoIndirect<\(p.valueType)>? = nil")
        case .singular:
            w.doc(comments[path])
            w.line("\(access) var \(p.declName): \(p.propertyType) = \(p.defaultExpression)")
        case .optional, .message:
            w.doc(comments[path])
            w.line("\(access) var \(p.declName): \(p.propertyType) = nil")
        case .repeated:
            w.doc(comments[path])
            w.line("\(access) var \(p.declName): \(p.propertyType) = []")
        case .map:
            w.doc(comments[path])
            w.line("\(access) var \(p.declName): \(p.propertyType) = [:]")
        }
    }

    private func emitOneof(_ name: String, _ members: [FieldPlan], container: String, into w: inout CodeWriter) {
        let property = Naming.escaped(Naming.fieldName(name))
        w.block("\(access) enum \(oneofType(name)): Sendable, Equatable") { w in
            for p in members {
                // A member whose type can contain this message must be boxed.
                let indirect = p.isMessageValue && symbols.reaches(from: p.descriptor.typeName, to: "." + container)
                w.line("\(indirect ? "indirect " : "")case \(p.declName)(\(p.valueType))")
            }
        }
        for p in members {
            w.line()
            w.block("\(access) var \(p.declName): \(p.valueType)") { w in
                w.block("get") { w in
                    w.line("if case .\(p.declName)(let v)? = \(property) { return v }")
                    w.line("return \(p.defaultExpression)")
                }
                w.line("set { \(property) = .\(p.declName)(newValue) }")
            }
        }
    }

    private func emitMerge(_ plans: [FieldPlan], oneofs: [String], into w: inout CodeWriter) {
        w.block("\(access) mutating func merge(from reader: inout ProtoReader) throws") { w in
            w.block("while let tag = try reader.nextTag()") { w in
                w.line("switch tag.fieldNumber {")
                for p in plans {
                    let target = "self." + p.declName
                    switch p.shape {
                    case .singular:
                        w.line("case \(p.number): try reader.decodeSingular(\(p.kind).self, tag, into: &\(target), unknown: &unknownFields)")
                    case .optional:
                        w.line("case \(p.number): try reader.decodeOptional(\(p.kind).self, tag, into: &\(target), unknown: &unknownFields)")
                    case .message:
                        w.line("case \(p.number): try reader.decodeMessage(tag, into: &\(target), unknown: &unknownFields)")
                    case .indirectMessage:
                        w.line("case \(p.number): try reader.decodeMessage(tag, into: &self._\(p.name), unknown: &unknownFields)")
                    case .repeated:
                        w.line("case \(p.number): try reader.decodeRepeated(\(p.kind).self, tag, into: &\(target), unknown: &unknownFields)")
                    case .map(let k, let v):
                        w.line("case \(p.number): try reader.decodeMapEntry(\(k).self, \(v).self, tag, into: &\(target), unknown: &unknownFields)")
                    case .oneofMember:
                        let oneof = oneofProperty(p, oneofs)
                        w.line("case \(p.number):")
                        if p.isMessageValue {
                            // A repeated occurrence merges into the member already set.
                            w.line("    var v: \(p.valueType)? = nil")
                            w.line("    if case .\(p.declName)(let existing)? = \(oneof) { v = existing }")
                            w.line("    if try reader.decodeMessage(tag, into: &v, unknown: &unknownFields), let v { \(oneof) = .\(p.declName)(v) }")
                        } else {
                            w.line("    var v = \(p.kind).defaultValue")
                            w.line("    if try reader.decodeSingular(\(p.kind).self, tag, into: &v, unknown: &unknownFields) { \(oneof) = .\(p.declName)(v) }")
                        }
                    }
                }
                w.line("default: try reader.keepUnknown(tag, in: &unknownFields)")
                w.line("}")
            }
        }
    }

    /// Encoding and size share one walk over the fields in field-number order.
    private func fieldStatements(_ plans: [FieldPlan], oneofs: [String], size: Bool) -> [String] {
        plans.sorted { $0.number < $1.number }.map { p in
            let value = "self." + p.declName
            let n = p.number
            switch p.shape {
            case .singular:
                return size ? "size &+= ProtoSize.singular(\(p.kind).self, \(n), \(value))"
                    : "writer.writeSingular(\(p.kind).self, \(n), \(value))"
            case .optional, .message, .indirectMessage:
                return size ? "if let v = \(value) { size &+= ProtoSize.field(\(p.kind).self, \(n), v) }"
                    : "if let v = \(value) { writer.writeField(\(p.kind).self, \(n), v) }"
            case .repeated(let packed):
                let suffix = packed ? "" : "Unpacked"
                return size ? "size &+= ProtoSize.repeated\(suffix)(\(p.kind).self, \(n), \(value))"
                    : "writer.writeRepeated\(suffix)(\(p.kind).self, \(n), \(value))"
            case .map(let k, let v):
                return size ? "size &+= ProtoSize.map(\(k).self, \(v).self, \(n), \(value))"
                    : "writer.writeMap(\(k).self, \(v).self, \(n), \(value))"
            case .oneofMember:
                let test = "if case .\(p.declName)(let v)? = \(oneofProperty(p, oneofs))"
                return size ? "\(test) { size &+= ProtoSize.field(\(p.kind).self, \(n), v) }"
                    : "\(test) { writer.writeField(\(p.kind).self, \(n), v) }"
            }
        }
    }

    private func emitEncode(_ plans: [FieldPlan], oneofs: [String], into w: inout CodeWriter) {
        w.block("\(access) func encode(to writer: inout ProtoWriter)") { w in
            for s in fieldStatements(plans, oneofs: oneofs, size: false) { w.line(s) }
            w.line("writer.writeUnknown(unknownFields)")
        }
    }

    private func emitSize(_ plans: [FieldPlan], oneofs: [String], into w: inout CodeWriter) {
        w.block("\(access) var encodedSize: Int") { w in
            let statements = fieldStatements(plans, oneofs: oneofs, size: true)
            guard !statements.isEmpty else { return w.line("unknownFields.bytes.count") }
            w.line("var size = unknownFields.bytes.count")
            for s in statements { w.line(s) }
            w.line("return size")
        }
    }
}
