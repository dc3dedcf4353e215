import Wire

/// Every message and enum in a descriptor set, by fully qualified proto name
/// (with the leading dot protoc uses in `type_name`), with its Swift name.
struct SymbolTable {
    enum Entry {
        case message(MessageDescriptor, swiftName: String, fullName: String)
        case enumeration(EnumDescriptor, swiftName: String)
    }

    private(set) var entries: [String: Entry] = [:]

    init(files: [FileDescriptor]) {
        for file in files {
            let scope = file.package.isEmpty ? "" : "." + file.package
            let prefix = Naming.packagePrefix(file.package)
            for m in file.messages { add(m, protoScope: scope, swiftName: prefix + m.name) }
            for e in file.enums { entries[scope + "." + e.name] = .enumeration(e, swiftName: prefix + e.name) }
        }
    }

    private mutating func add(_ m: MessageDescriptor, protoScope: String, swiftName: String) {
        let full = protoScope + "." + m.name
        entries[full] = .message(m, swiftName: swiftName, fullName: String(full.dropFirst()))
        for nested in m.nestedMessages { add(nested, protoScope: full, swiftName: swiftName + "." + nested.name) }
        for e in m.enums { entries[full + "." + e.name] = .enumeration(e, swiftName: swiftName + "." + e.name) }
    }

    func swiftName(_ typeName: String) throws -> String {
        switch entries[typeName] {
        case .message(_, let s, _)?, .enumeration(_, let s)?: return s
        case nil: throw GeneratorError.unknownType(typeName)
        }
    }

    /// The Swift case of an enum's zero value (proto3's default).
    func enumZeroCase(_ typeName: String) -> String? {
        guard case .enumeration(let e, _)? = entries[typeName], let zero = e.values.first(where: { $0.number == 0 }) else {
            return nil
        }
        return Naming.escaped(Naming.enumCase(zero.name, enumName: e.name))
    }

    func messageDescriptor(_ typeName: String) -> MessageDescriptor? {
        if case .message(let m, _, _)? = entries[typeName] { return m }
        return nil
    }

    /// Whether a value of message `from` can contain, through singular message
    /// fields, a value of message `to`. Such a field must be stored indirectly,
    /// or the Swift struct would have infinite size.
    func reaches(from: String, to: String) -> Bool {
        var seen: Set<String> = []
        var stack = [from]
        while let current = stack.popLast() {
            if current == to { return true }
            guard seen.insert(current).inserted, case .message(let m, _, _)? = entries[current] else { continue }
            for f in m.fields where f.kind == .message && f.label != .repeated {
                stack.append(f.typeName)
            }
        }
        return false
    }
}
