import Wire

/// How proto names become Swift names. The rules follow the widely used
/// swift-protobuf conventions so generated APIs look familiar:
/// `grpc.testing.SimpleRequest` → `Grpc_Testing_SimpleRequest`,
/// `response_size` → `responseSize`, `COLOR_RED` in `Color` → `.red`.
enum Naming {
    static let swiftKeywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
        "throw", "switch", "where", "while", "Any", "as", "await", "false", "is", "nil", "self", "Self",
        "super", "throws", "true", "try", "Type", "Protocol", "some", "any", "consume", "copy", "discard",
        "each", "borrowing", "consuming",
    ]

    /// Members every generated message has; a field with one of these names gets a suffix.
    static let reservedMembers: Set<String> = ["unknownFields", "encodedSize", "protoMessageName", "protoFile", "merge", "encode"]

    /// `snake_case` or `SCREAMING_CASE` → `lowerCamelCase`.
    static func lowerCamel(_ name: String) -> String {
        let parts = name.split(separator: "_", omittingEmptySubsequences: true).map(String.init)
        guard let first = parts.first else { return name }
        let head = first == first.uppercased() ? first.lowercased() : lowerFirst(first)
        return head + parts.dropFirst().map { upperFirst($0 == $0.uppercased() ? $0.lowercased() : $0) }.joined()
    }

    static func upperCamel(_ name: String) -> String { upperFirst(lowerCamel(name)) }

    static func upperFirst(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
    static func lowerFirst(_ s: String) -> String { s.prefix(1).lowercased() + s.dropFirst() }

    /// Backticks a name that is a Swift keyword.
    static func escaped(_ name: String) -> String { swiftKeywords.contains(name) ? "`\(name)`" : name }

    /// A message field's Swift property name (unescaped).
    static func fieldName(_ protoName: String) -> String {
        let n = lowerCamel(protoName)
        return reservedMembers.contains(n) ? n + "_p" : n
    }

    /// `grpc.testing` → `Grpc_Testing_`.
    static func packagePrefix(_ package: String) -> String {
        guard !package.isEmpty else { return "" }
        return package.split(separator: ".").map { upperCamel(String($0)) }.joined(separator: "_") + "_"
    }

    /// `COLOR_RED` in enum `Color` → `red`; the prefix is kept when stripping it
    /// would leave nothing or a leading digit.
    static func enumCase(_ valueName: String, enumName: String) -> String {
        let prefix = screamingSnake(enumName) + "_"
        var name = valueName
        if name.hasPrefix(prefix), name.count > prefix.count,
            let next = name.dropFirst(prefix.count).first, !next.isNumber
        {
            name = String(name.dropFirst(prefix.count))
        }
        return lowerCamel(name)
    }

    /// `GrpclbRouteType` → `GRPCLB_ROUTE_TYPE`.
    static func screamingSnake(_ camel: String) -> String {
        var out = ""
        for (i, ch) in camel.enumerated() {
            if ch.isUppercase, i > 0 { out.append("_") }
            out.append(contentsOf: ch.uppercased())
        }
        return out
    }

    /// `grpc/testing/messages.proto` → `grpc_testing_messages`.
    static func fileStem(_ protoPath: String) -> String {
        var stem = protoPath
        if stem.hasSuffix(".proto") { stem.removeLast(6) }
        return stem.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// A Swift string literal for arbitrary text.
    static func literal(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}
