import Foundation
import Wire

/// `croupier json`: the proto3 JSON mapping as a filter over the messages
/// compiled into this binary. Reads lines from stdin, one message per line,
/// and answers each with one line:
///
/// - `croupier json to-json TYPE`: base64 of the binary encoding in, JSON out.
/// - `croupier json to-binary TYPE [--ignore-unknown]`: JSON in, base64 out.
///
/// TYPE may be `-`: each line then starts with the type and a tab.
/// `--descriptor-set FILE` adds the messages of a `protoc --descriptor_set_out
/// --include_imports` file to the compiled ones. A line
/// that does not map is answered `error: <path>: <reason>`, and the exit
/// status is 1 if any line failed.
enum JSONTool {
    /// Every .proto file in `protos/`: the served services' and Wire's own.
    static let files: [ProtoFileDescriptor] = Serve.files + [.croupier_wire_v1_wire]

    static func run(arguments: [String]) throws -> Int32 {
        guard arguments.count >= 2, ["to-json", "to-binary"].contains(arguments[0]) else {
            throw LaunchError("usage: croupier json to-json|to-binary TYPE|- [--ignore-unknown] [--descriptor-set FILE]")
        }
        var descriptors = try files.map { try FileDescriptor(serialized: $0.serialized) }
        if let path = option("--descriptor-set", in: arguments) {
            guard let data = FileManager.default.contents(atPath: path) else { throw LaunchError("cannot read \(path)") }
            descriptors += try FileDescriptorSet(bytes: [UInt8](data)).files
        }
        let json = ProtoJSON(schema: ProtoSchema(files: descriptors))
        let toJSON = arguments[0] == "to-json"
        let fixedType = arguments[1] == "-" ? nil : arguments[1]
        let ignoreUnknown = arguments.contains("--ignore-unknown")
        var failed = false
        while let line = readLine(strippingNewline: true) {
            var type = fixedType ?? ""
            var payload = Substring(line)
            if fixedType == nil {
                guard let tab = line.firstIndex(of: "\t") else {
                    print("error: expected TYPE<tab>MESSAGE")
                    failed = true
                    continue
                }
                type = String(line[..<tab])
                payload = line[line.index(after: tab)...]
            }
            do {
                if toJSON {
                    guard let bytes = Data(base64Encoded: String(payload)) else { throw ProtoJSONError(path: "", "the line is not base64") }
                    print(try json.json(fromBinary: [UInt8](bytes), type: type))
                } else {
                    let bytes = try json.binary(fromJSON: String(payload), type: type, ignoringUnknownFields: ignoreUnknown)
                    print(Data(bytes).base64EncodedString())
                }
            } catch {
                print("error: " + "\(error)".replacingOccurrences(of: "\n", with: "\\n"))  // one line per message, always
                failed = true
            }
        }
        return failed ? 1 : 0
    }
}
