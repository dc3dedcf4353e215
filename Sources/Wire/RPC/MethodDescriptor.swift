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

    public init(service: String, method: String, kind: CallKind) {
        self.service = service
        self.method = method
        self.kind = kind
    }

    /// The path used on the wire and by HTTP/2 gRPC: `/grpc.testing.TestService/UnaryCall`.
    public var path: String { "/\(service)/\(method)" }
    public var description: String { path }
}
