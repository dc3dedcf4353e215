import Foundation
import Gateway
import Wire

/// `croupier call`: grpcurl's job, built in. It learns the gateway's
/// services and message types from its reflection service, so it needs no
/// .proto files, and speaks gRPC over HTTP/2 like any client.
///
/// TLS (h2): `--tls` (the system's roots), `--ca FILE`, or `--insecure` (no check).
///
///     croupier call [--addr H:P] --list [SERVICE]
///     croupier call [--addr H:P] --describe SYMBOL
///     croupier call [--addr H:P] [--token T | --sub S --perms a,b] [--header k:v]... [--timeout S] METHOD ['{json}']
///
/// A unary or server-streaming call takes its request as the argument (or
/// stdin); a client stream reads one JSON request per line of stdin. Each
/// response message prints as one line of JSON. A failed call prints its
/// status name, message and trailers on stderr, and exits with the status
/// code's number.
enum CallTool {
    static func run(arguments: [String]) throws -> Int32 {
        let (host, port) = try splitAddress(option("--addr", in: arguments) ?? "127.0.0.1:7000")
        let tls = option("--ca", in: arguments) != nil || arguments.contains("--insecure") || arguments.contains("--tls")
        let client = try GRPCHTTP2Client(
            host: host, port: port, tls: tls ? (option("--ca", in: arguments), arguments.contains("--insecure")) : nil)
        let reflection = Reflection(client: client)
        if arguments.contains("--list") {
            let service = positional(arguments).first
            if let service {
                let schema = try reflection.schema(containing: service)
                for path in schema.methods.keys.sorted() where path.hasPrefix("/\(service)/") { print(service + "." + path.split(separator: "/").last!) }
            } else {
                for s in try reflection.services() { print(s) }
            }
            return 0
        }
        if let symbol = option("--describe", in: arguments) {
            print(try describe(symbol, in: try reflection.schema(containing: symbol)))
            return 0
        }
        guard let target = positional(arguments).first else {
            throw LaunchError("name a method (package.Service/Method), or --list, or --describe SYMBOL")
        }
        let path = methodPath(target)
        let service = String(path.dropFirst().split(separator: "/").first ?? "")
        let schema = try reflection.schema(containing: service)
        guard let method = schema.methods[path] else { throw LaunchError("\(service) has no method \(path.split(separator: "/").last ?? "")") }
        let json = ProtoJSON(schema: schema)
        let texts: [String]
        if method.clientStreaming {
            texts = Array(AnyIterator { readLine() }).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        } else if positional(arguments).count > 1 {
            texts = [positional(arguments)[1]]
        } else {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            texts = [input.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "{}" : input]
        }
        let requests = try texts.map { try json.binary(fromJSON: $0, type: method.input) }
        var metadata: [(String, String)] = []
        if let token = try option("--token", in: arguments) ?? Tools.mintToken(arguments: arguments) {
            metadata.append(("authorization", "Bearer " + token))
        }
        for h in values("--header", in: arguments) {
            guard let colon = h.firstIndex(of: ":") else { throw LaunchError("--header takes name:value, got \(h)") }
            metadata.append((h[..<colon].lowercased(), h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let timeout = try option("--timeout", in: arguments).map { text -> Duration in
            guard let s = Double(text), s > 0 else { throw LaunchError("--timeout takes seconds, got \(text)") }
            return .milliseconds(Int64(s * 1000))
        }
        let outcome = try client.call(path: path, metadata: metadata, timeout: timeout, requests: requests) { bytes in
            // Unbuffered: a server stream's messages show as they arrive.
            FileHandle.standardOutput.write(Data((try json.json(fromBinary: bytes, type: method.output) + "\n").utf8))
        }
        guard outcome.code == .ok else {
            var err = "ERROR: \(outcome.code.name): \(outcome.message)\n"
            for (k, v) in outcome.trailingMetadata { err += "  \(k): \(v)\n" }
            FileHandle.standardError.write(Data(err.utf8))
            return Int32(outcome.code.rawValue)
        }
        return 0
    }

    /// `pkg.Service/Method`, `pkg.Service.Method` or `/pkg.Service/Method` as a path.
    static func methodPath(_ name: String) -> String {
        var n = name.hasPrefix("/") ? String(name.dropFirst()) : name
        if !n.contains("/"), let dot = n.lastIndex(of: ".") { n.replaceSubrange(dot...dot, with: "/") }
        return "/" + n
    }

    /// Arguments that are neither options nor their values.
    static func positional(_ arguments: [String]) -> [String] {
        let flags: Set<String> = ["--list", "--insecure", "--tls"]
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a.hasPrefix("--") && a.count > 2 { i += flags.contains(a) ? 1 : 2; continue }
            out.append(a)
            i += 1
        }
        return out
    }

    /// Every value of a repeatable option.
    static func values(_ name: String, in arguments: [String]) -> [String] {
        zip(arguments, arguments.dropFirst()).filter { $0.0 == name }.map(\.1)
    }

    /// A service, method or message, in .proto-like text.
    static func describe(_ symbol: String, in schema: ProtoSchema) throws -> String {
        let methods = schema.methods.filter { $0.key.hasPrefix("/\(symbol)/") }.sorted { $0.key < $1.key }
        if !methods.isEmpty {
            return "service \(symbol) {\n" + methods.map { "  " + signature($0.key, $0.value) }.joined(separator: "\n") + "\n}"
        }
        if let m = schema.methods[methodPath(symbol)] { return signature(methodPath(symbol), m) }
        if let message = schema.messages[symbol] {
            let fields = message.fields.map { f -> String in
                let type = f.kind == .message || f.kind == .enum ? f.typeName : "\(f.kind)"
                return "  \(f.isRepeated ? "repeated " : "")\(type) \(f.name) = \(f.number);  // JSON: \(f.jsonName)"
            }
            return "message \(symbol) {\n" + fields.joined(separator: "\n") + "\n}"
        }
        if let e = schema.enums[symbol] {
            return "enum \(symbol) {\n" + e.values.map { "  \($0.name) = \($0.number);" }.joined(separator: "\n") + "\n}"
        }
        throw LaunchError("\(symbol) is not a service, method, message or enum the gateway describes")
    }

    static func signature(_ path: String, _ m: ProtoSchema.Method) -> String {
        let name = path.split(separator: "/").last ?? ""
        return "rpc \(name)(\(m.clientStreaming ? "stream " : "")\(m.input)) returns (\(m.serverStreaming ? "stream " : "")\(m.output));"
    }
}

/// The gateway's reflection service (grpc.reflection.v1), one request per call.
struct Reflection {
    let client: GRPCHTTP2Client

    private func ask(_ request: Grpc_Reflection_V1_ServerReflectionRequest) throws -> Grpc_Reflection_V1_ServerReflectionResponse {
        var answer: Grpc_Reflection_V1_ServerReflectionResponse?
        let outcome = try client.call(
            path: Grpc_Reflection_V1_ServerReflection.Method.serverReflectionInfo.path, requests: [request.serializedBytes()]
        ) { answer = try Grpc_Reflection_V1_ServerReflectionResponse(serializedBytes: $0) }
        guard outcome.code == .ok, let answer else { throw LaunchError("reflection failed: \(outcome.code.name) \(outcome.message)") }
        if case .errorResponse(let e)? = answer.messageResponse { throw LaunchError("reflection: \(e.errorMessage)") }
        return answer
    }

    func services() throws -> [String] {
        var r = Grpc_Reflection_V1_ServerReflectionRequest()
        r.messageRequest = .listServices("*")
        guard case .listServicesResponse(let list)? = try ask(r).messageResponse else { throw LaunchError("reflection: no service list") }
        return list.service.map(\.name).sorted()
    }

    /// The schema of the file defining `symbol` (a method's service for `pkg.Service.Method`) and everything it imports.
    func schema(containing symbol: String) throws -> ProtoSchema {
        var r = Grpc_Reflection_V1_ServerReflectionRequest()
        r.messageRequest = .fileContainingSymbol(symbol)
        var files: [String: FileDescriptor] = [:]
        var pending = try fileDescriptors(r)
        while let next = pending.popLast() {
            guard files[next.name] == nil else { continue }
            files[next.name] = next
            for dependency in next.dependencies where files[dependency] == nil {
                var byName = Grpc_Reflection_V1_ServerReflectionRequest()
                byName.messageRequest = .fileByFilename(dependency)
                pending += try fileDescriptors(byName)
            }
        }
        return ProtoSchema(files: Array(files.values))
    }

    private func fileDescriptors(_ request: Grpc_Reflection_V1_ServerReflectionRequest) throws -> [FileDescriptor] {
        guard case .fileDescriptorResponse(let f)? = try ask(request).messageResponse else {
            throw LaunchError("reflection: no descriptor for \(request.messageRequest.map { "\($0)" } ?? "the request")")
        }
        return try f.fileDescriptorProto.map { try FileDescriptor(serialized: $0) }
    }
}
