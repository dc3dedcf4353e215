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
///
/// Its names live in one shared object, so copying a descriptor (every call
/// does, several times) costs one reference count, not three.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    private final class Names: Sendable {
        let service: String
        let method: String
        let path: String
        init(service: String, method: String) {
            self.service = service
            self.method = method
            path = "/\(service)/\(method)"
        }
    }

    private let names: Names
    public let kind: CallKind

    /// Fully qualified service name, e.g. `grpc.testing.TestService`.
    public var service: String { names.service }
    /// Method name as declared in the proto, e.g. `UnaryCall`.
    public var method: String { names.method }
    /// The path used on the wire and by HTTP/2 gRPC: `/grpc.testing.TestService/UnaryCall`.
    /// Stored, because every call sends it.
    public var path: String { names.path }

    public init(service: String, method: String, kind: CallKind) {
        names = Names(service: service, method: method)
        self.kind = kind
    }

    public var description: String { path }

    public static func == (a: MethodDescriptor, b: MethodDescriptor) -> Bool {
        a.kind == b.kind
            && (a.names === b.names || (a.names.service == b.names.service && a.names.method == b.names.method))
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(names.path)
        hasher.combine(kind)
    }
}
