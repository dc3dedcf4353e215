import Foundation

/// A .proto file compiled into the binary: its serialized
/// `FileDescriptorProto` (without source info) and the symbols it defines.
/// Server reflection answers from these, so clients such as grpcurl need
/// no .proto files.
public struct ProtoFileDescriptor: Sendable {
    /// Path as imported, e.g. `grpc/health/v1/health.proto`.
    public let name: String
    public let package: String
    public let dependencies: [String]
    /// Fully qualified messages, enums, services and methods defined here.
    public let symbols: [String]
    /// Fully qualified services defined here.
    public let services: [String]
    /// The files it imports, compiled in too (so its messages' field types resolve).
    public let imports: [ProtoFileDescriptor]
    private let base64: String

    public init(
        name: String, package: String, dependencies: [String], imports: [ProtoFileDescriptor] = [], symbols: [String],
        services: [String], base64: String
    ) {
        self.name = name
        self.package = package
        self.dependencies = dependencies
        self.imports = imports
        self.symbols = symbols
        self.services = services
        self.base64 = base64
    }

    /// The serialized `google.protobuf.FileDescriptorProto`.
    public var serialized: [UInt8] { [UInt8](Data(base64Encoded: base64) ?? Data()) }

    /// This file and everything it imports, each once.
    public var withImports: [ProtoFileDescriptor] {
        var seen = Set<String>()
        var out: [ProtoFileDescriptor] = []
        func visit(_ f: ProtoFileDescriptor) {
            guard seen.insert(f.name).inserted else { return }
            f.imports.forEach(visit)
            out.append(f)
        }
        visit(self)
        return out
    }
}
