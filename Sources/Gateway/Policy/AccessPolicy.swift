/// Which calls need which permission. Services listed as public need no
/// token; every other method needs a valid token, and the permission named
/// for it (by full method path or by service name) if there is one.
public struct AccessPolicy: Sendable {
    public var publicServices: Set<String>
    /// `/pkg.Service/Method` or `pkg.Service` → permission.
    public var permissions: [String: String]

    public init(publicServices: Set<String>, permissions: [String: String]) {
        self.publicServices = publicServices
        self.permissions = permissions
    }

    public func isPublic(service: String) -> Bool { publicServices.contains(service) }

    /// The permission a method needs, nil when a valid token is enough.
    public func permission(path: String, service: String) -> String? {
        permissions[path] ?? permissions[service]
    }
}
