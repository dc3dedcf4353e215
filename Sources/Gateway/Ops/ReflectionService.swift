import Wire

/// `grpc.reflection.v1.ServerReflection` from the descriptors compiled into
/// the binary, so grpcurl and similar tools work with no .proto files.
struct ReflectionService: Grpc_Reflection_V1_ServerReflection.ServiceProtocol {
    private let byName: [String: ProtoFileDescriptor]
    private let bySymbol: [String: ProtoFileDescriptor]
    private let services: [String]

    init(files: [ProtoFileDescriptor]) {
        var names: [String: ProtoFileDescriptor] = [:]
        var symbols: [String: ProtoFileDescriptor] = [:]
        for f in files {
            names[f.name] = f
            for s in f.symbols { symbols[s] = f }
        }
        byName = names
        bySymbol = symbols
        services = Array(Set(files.flatMap(\.services))).sorted()
    }

    func serverReflectionInfo(
        request: RPCAsyncSequence<Grpc_Reflection_V1_ServerReflectionRequest>,
        response: RPCWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        for try await r in request {
            var out = Grpc_Reflection_V1_ServerReflectionResponse.with {
                $0.validHost = r.host
                $0.originalRequest = r
            }
            out.messageResponse = answer(r.messageRequest)
            try await response.write(out)
        }
    }

    private func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest.OneOf_MessageRequest?)
        -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse
    {
        switch request {
        case .listServices:
            return .listServicesResponse(.with { $0.service = services.map { name in .with { $0.name = name } } })
        case .fileByFilename(let name):
            guard let f = byName[name] else { return notFound("file \(name) not found") }
            return files(from: f)
        case .fileContainingSymbol(let symbol):
            guard let f = file(defining: symbol) else { return notFound("symbol \(symbol) not found") }
            return files(from: f)
        case .fileContainingExtension(let e):
            return notFound("extension \(e.extensionNumber) of \(e.containingType) not found (no extensions are served)")
        case .allExtensionNumbersOfType(let type):
            guard file(defining: type) != nil else { return notFound("type \(type) not found") }
            return .allExtensionNumbersResponse(.with { $0.baseTypeName = type })
        case nil:
            return .errorResponse(.with {
                $0.errorCode = Int32(StatusCode.invalidArgument.rawValue)
                $0.errorMessage = "empty reflection request"
            })
        }
    }

    /// A symbol, or its parent for fields, methods and nested names not listed themselves.
    private func file(defining symbol: String) -> ProtoFileDescriptor? {
        var name = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
        while !name.isEmpty {
            if let f = bySymbol[name] { return f }
            guard let dot = name.lastIndex(of: ".") else { return nil }
            name = String(name[..<dot])
        }
        return nil
    }

    /// The file and every file it depends on, transitively, the file first.
    private func files(from root: ProtoFileDescriptor) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        var seen: Set<String> = []
        var ordered: [[UInt8]] = []
        var queue = [root]
        while let f = queue.first {
            queue.removeFirst()
            guard seen.insert(f.name).inserted else { continue }
            ordered.append(f.serialized)
            queue += f.dependencies.compactMap { byName[$0] }
        }
        return .fileDescriptorResponse(.with { $0.fileDescriptorProto = ordered })
    }

    private func notFound(_ message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.OneOf_MessageResponse {
        .errorResponse(.with {
            $0.errorCode = Int32(StatusCode.notFound.rawValue)
            $0.errorMessage = message
        })
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`: v1's messages under their
/// older name, field for field, so the v1 handler serves the same bytes.
/// grpcio-reflection's Python client, older grpcurl, Postman and Evans speak
/// only v1alpha; grpc-go servers register both.
struct ReflectionV1AlphaService: RPCService {
    let v1: ReflectionService

    var rpcHandlers: [RPCHandler] {
        v1.rpcHandlers.map { RPCHandler(method: Grpc_Reflection_V1alpha_ServerReflection.Method.serverReflectionInfo, handle: $0.handle) }
    }
}
