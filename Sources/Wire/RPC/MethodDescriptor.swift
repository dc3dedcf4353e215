/// The four shapes of a call.
public enum CallKind: Sendable, Hashable {
    case unary
    case serverStreaming
    case clientStreaming
    case bidirectionalStreaming

    public var clientStreams: Bool { self == .clientStreaming || self == .bidirectionalStreaming }
    public var serverStreams: Bool { self == .serverStreaming || self == .bidirectionalStreaming }
}

/// Names one RPC method: `/package.Service/Method` on the wire.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// Fully qualified service name, e.g. `grpc.testing.TestService`.
    public let service: String
    /// Method name as declared in the proto, e.g. `UnaryCall`.
    public let method: String
    public let kind: CallKind

    /// The path used on the wire and by HTTP/2 gRPC: `/grpc.testing.TestService/UnaryCall`.
    /// Stored, because every call sends it.
    public let path: String

    public init(service: String, method: String, kind: CallKind) {
        self.service = service
        self.method = method
        self.kind = kind
        self.path = "/\(service)/\(method)"
    }
    public var description: String { path }
}
