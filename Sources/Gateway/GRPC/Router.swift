import Wire

/// Where a method goes: the gateway's own services (health, reflection) in
/// process, or the Wire backend that owns the method's service (or, when no
/// backend names the service, its proto package).
struct Router: Sendable {
    struct Target {
        let channel: any RPCChannel
        let method: MethodDescriptor
        let backend: String
    }

    private let local: [String: any RPCChannel]
    /// Every described method's target, by path, worked out once: a call
    /// costs one lookup.
    private let routes: [String: Target]
    private let knownServices: Set<String>
    private let internalMethods: Set<String>

    init(
        local: [String: any RPCChannel], backends: [(GatewayConfig.Backend, any RPCChannel)], methods: [MethodDescriptor],
        internalMethods: Set<String> = []
    ) {
        self.local = local
        self.internalMethods = internalMethods
        var table: [String: (String, any RPCChannel)] = [:]
        for (b, channel) in backends { for p in b.packages { table[p] = (b.name, channel) } }
        knownServices = Set(methods.map(\.service))
        var routes: [String: Target] = [:]
        for d in methods {
            if let channel = local[d.service] {
                routes[d.path] = Target(channel: channel, method: d, backend: "gateway")
            } else if let owner = Self.owner(of: d.service, in: table) {
                routes[d.path] = Target(channel: owner.channel, method: d, backend: owner.name)
            }
        }
        self.routes = routes
    }

    /// Every path this router routes (the metrics' method labels).
    var knownPaths: Set<String> { Set(routes.keys).subtracting(internalMethods) }

    /// The target for `/service/method`; UNIMPLEMENTED for an unknown service
    /// or method. Only described methods are routed: a service no descriptor
    /// names is unknown even inside a backend's package (the gateway could
    /// not tell its call kind or which permission guards it), so a probe for
    /// one learns UNIMPLEMENTED, before any authentication.
    func resolve(service: String, method: String, path: String) throws -> Target {
        if internalMethods.contains(path) {
            throw RPCError(.permissionDenied, "\(path) is internal: services call it over Wire, the gateway does not route it")
        }
        if let target = routes[path] { return target }
        if local[service] != nil || knownServices.contains(service) {
            throw RPCError(.unimplemented, "method \(method) not found in service \(service)")
        }
        throw RPCError(.unimplemented, "unknown service \(service)")
    }

    /// The backend that owns `service`: named for the service itself, else for its package.
    private static func owner(
        of service: String, in byPackage: [String: (name: String, channel: any RPCChannel)]
    ) -> (name: String, channel: any RPCChannel)? {
        if let owner = byPackage[service] { return owner }
        let package = service.split(separator: ".").dropLast().joined(separator: ".")
        return byPackage[package]
    }
}
