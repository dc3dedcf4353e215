/// Which calls need what. A permission named for a method path applies
/// even inside a public service; otherwise public services need nothing,
/// and every other method needs a valid token plus the permission named for
/// its service, if any.
public struct AccessPolicy: Sendable {
    public enum Requirement: Equatable, Sendable {
        case none
        case token
        case permission(String)
    }

    public var publicServices: Set<String>
    /// `/pkg.Service/Method` or `pkg.Service` → permission.
    public var permissions: [String: String]

    public init(publicServices: Set<String>, permissions: [String: String]) {
        self.publicServices = publicServices
        self.permissions = permissions
    }

    public func requirement(path: String, service: String) -> Requirement {
        if let p = permissions[path] { return .permission(p) }
        if publicServices.contains(service) { return .none }
        if let p = permissions[service] { return .permission(p) }
        return .token
    }
}
