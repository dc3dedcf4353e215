/// Every message and enum of a set of .proto files, by fully qualified name
/// (no leading dot): what the JSON mapping, reflection clients and the
/// gateway's transcoding need to read a message they have no generated type
/// for.
public struct ProtoSchema: Sendable {
    public struct Field: Sendable {
        public let name: String
        public let jsonName: String
        public let number: Int
        public let kind: FieldDescriptor.Kind
        public let isRepeated: Bool
        /// A message or enum field's type, fully qualified without the leading dot.
        public let typeName: String
        /// The oneof it belongs to (not the synthetic oneof of a proto3 `optional`).
        public let oneof: String?
        /// Set or not is recorded: proto3 `optional`, a message, or a oneof member.
        public let hasPresence: Bool
    }

    public struct Message: Sendable {
        public let name: String
        /// In field-number order.
        public let fields: [Field]
        public let isMapEntry: Bool
        let byNumber: [Int: Int]
        /// By JSON name and by proto name.
        let byAnyName: [String: Int]

        public func field(number: Int) -> Field? { byNumber[number].map { fields[$0] } }
        public func field(named name: String) -> Field? { byAnyName[name].map { fields[$0] } }
    }

    public struct Enum: Sendable {
        public let name: String
        public let values: [(name: String, number: Int32)]
        public func name(of number: Int32) -> String? { values.first { $0.number == number }?.name }
        public func number(of name: String) -> Int32? { values.first { $0.name == name }?.number }
    }

    /// A method's message types, by its path (`/package.Service/Method`).
    public struct Method: Sendable {
        public let input: String
        public let output: String
        public let clientStreaming: Bool
        public let serverStreaming: Bool
    }

    public private(set) var messages: [String: Message] = [:]
    public private(set) var enums: [String: Enum] = [:]
    public private(set) var methods: [String: Method] = [:]

    public init(files: [FileDescriptor]) {
        for file in files {
            let prefix = file.package.isEmpty ? "" : file.package + "."
            for m in file.messages { add(m, named: prefix + m.name) }
            for e in file.enums { enums[prefix + e.name] = Enum(name: prefix + e.name, values: e.values) }
            for s in file.services {
                for m in s.methods {
                    methods["/\(prefix)\(s.name)/\(m.name)"] = Method(
                        input: String(m.inputType.drop { $0 == "." }), output: String(m.outputType.drop { $0 == "." }),
                        clientStreaming: m.clientStreaming, serverStreaming: m.serverStreaming)
                }
            }
        }
    }

    /// The schema of the files compiled into this binary (reflection's descriptors).
    public init(compiled files: [ProtoFileDescriptor]) throws {
        self.init(files: try files.map { try FileDescriptor(serialized: $0.serialized) })
    }

    public func message(_ name: String) throws -> Message {
        guard let m = messages[name] else { throw ProtoJSONError(path: "", "unknown message type \(name)") }
        return m
    }

    private mutating func add(_ m: MessageDescriptor, named name: String) {
        for nested in m.nestedMessages { add(nested, named: name + "." + nested.name) }
        for e in m.enums { enums[name + "." + e.name] = Enum(name: name + "." + e.name, values: e.values) }
        let fields = m.fields.sorted { $0.number < $1.number }.map { f -> Field in
            let synthetic = f.proto3Optional
            return Field(
                name: f.name, jsonName: f.jsonName.isEmpty ? Self.lowerCamel(f.name) : f.jsonName, number: Int(f.number),
                kind: f.kind, isRepeated: f.label == .repeated,
                typeName: f.typeName.hasPrefix(".") ? String(f.typeName.dropFirst()) : f.typeName,
                oneof: synthetic ? nil : f.oneofIndex.flatMap { m.oneofNames.indices.contains(Int($0)) ? m.oneofNames[Int($0)] : nil },
                hasPresence: f.label != .repeated && (f.oneofIndex != nil || f.kind == .message))
        }
        var byNumber: [Int: Int] = [:]
        var byAnyName: [String: Int] = [:]
        for (i, f) in fields.enumerated() {
            byNumber[f.number] = i
            byAnyName[f.name] = i
            byAnyName[f.jsonName] = i
        }
        messages[name] = Message(name: name, fields: fields, isMapEntry: m.isMapEntry, byNumber: byNumber, byAnyName: byAnyName)
    }

    /// protoc's default JSON name: underscores dropped, each letter after one capitalized.
    static func lowerCamel(_ name: String) -> String {
        var out = ""
        var upper = false
        for c in name {
            if c == "_" {
                upper = true
            } else if upper {
                out += c.uppercased()
                upper = false
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// A message that does not map between JSON and protobuf: where (`path`,
/// e.g. `entries[2].points`) and why. Servers answer it with INVALID_ARGUMENT.
public struct ProtoJSONError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}
