import Wire

/// Everything the gateway needs to run, from `croupier`'s configuration.
public struct GatewayConfig: Sendable {
    /// A Wire service the gateway forwards to (one replica or several,
    /// balanced by a `ReplicaChannel`), and the proto packages it owns.
    public struct Backend: Sendable {
        public var name: String
        public var replicas: [(host: String, port: UInt16)]
        public var packages: [String]

        public init(name: String, replicas: [(host: String, port: UInt16)], packages: [String]) {
            precondition(!replicas.isEmpty, "backend \(name) needs an address")
            self.name = name
            self.replicas = replicas
            self.packages = packages
        }

        public init(name: String, host: String, port: UInt16, packages: [String]) {
            self.init(name: name, replicas: [(host, port)], packages: packages)
        }
    }

    public struct TLS: Sendable {
        public var host: String
        public var port: UInt16
        public var certificateFile: String
        public var keyFile: String

        public init(host: String, port: UInt16, certificateFile: String, keyFile: String) {
            self.host = host
            self.port = port
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public var host = "127.0.0.1"
    public var port: UInt16 = 7000
    public var tls: TLS?
    public var jwtSecret: [UInt8]
    public var internalSecret: [UInt8]
    public var backends: [Backend]
    /// Every method the gateway knows (call kind and owning service).
    public var methods: [MethodDescriptor]
    /// Descriptors served by reflection.
    public var files: [ProtoFileDescriptor]
    /// Method paths services call each other with, never routed from outside
    /// (each service declares its own, e.g. `StagingPermission.internalMethods`).
    public var internalMethods: Set<String> = []
    public var policy: AccessPolicy
    public var rateLimits: [RateLimitRule]
    public var maxMessageBytes = 4 << 20
    /// A larger (or smaller) request message limit for some methods, by path:
    /// e.g. UploadImage takes images up to the staging service's own limit.
    public var maxMessageBytesByMethod: [String: Int] = [:]
    public var maxConcurrentStreams = 256
    public var idleTimeoutSeconds = 300.0
    /// A connection must send its first request (a stream its headers) within this.
    public var headerTimeoutSeconds = 10.0
    /// Web origins allowed to call from a browser (CORS); `*` for any; empty: none.
    public var corsOrigins: [String] = []
    public var tlsHandshakeTimeoutSeconds = 10.0
    /// Request and response bytes all clients together may make the gateway hold.
    public var maxBufferedBytes = 256 << 20
    /// The same for one connection.
    public var maxConnectionBufferedBytes = 16 << 20
    /// Keepalive enforcement: a client pinging more often than this, with no
    /// response sent in between, is told "too_many_pings" (grpc-go's rule).
    public var minPingIntervalSeconds = 300.0
    /// Tokens without `exp` are refused unless this is set.
    public var allowTokensWithoutExpiry = false
    /// Where JSON access-log lines and other log lines go.
    public var log: @Sendable (String) -> Void

    public init(
        jwtSecret: [UInt8], internalSecret: [UInt8], backends: [Backend], methods: [MethodDescriptor],
        files: [ProtoFileDescriptor], policy: AccessPolicy, rateLimits: [RateLimitRule],
        log: @escaping @Sendable (String) -> Void
    ) {
        self.jwtSecret = jwtSecret
        self.internalSecret = internalSecret
        self.backends = backends
        self.methods = methods
        self.files = files
        self.policy = policy
        self.rateLimits = rateLimits
        self.log = log
    }

    /// The services the gateway itself serves (health, reflection) and the
    /// public conformance service: callable without a token.
    public static let defaultPublicServices: Set<String> = [
        Grpc_Health_V1_Health.name, Grpc_Reflection_V1_ServerReflection.name, Grpc_Reflection_V1alpha_ServerReflection.name,
        Grpc_Testing_TestService.name,
        Grpc_Testing_UnimplementedService.name,
    ]
}
