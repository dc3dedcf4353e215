/// Who is calling, as the gateway forwards it: the principal and
/// permissions of a verified token. The gateway drops these keys from what
/// clients send and sets them itself, and a Wire server accepts calls only
/// from peers that proved the internal secret, so services trust them. A
/// call without a principal comes from another service (an authenticated
/// Wire peer acting for itself).
public struct ForwardedCaller: Sendable, Equatable {
    public static let principalKey = "x-croupier-principal"
    public static let permissionsKey = "x-croupier-permissions"

    public let principal: String?
    public let permissions: Set<String>

    /// Who to record as the author of a change: the principal, or "service"
    /// for a call from another service (no principal, a proven peer).
    public var author: String { principal ?? "service" }

    public init(_ metadata: Metadata) {
        principal = metadata[Self.principalKey].flatMap { $0.isEmpty ? nil : $0 }
        permissions = Set((metadata[Self.permissionsKey] ?? "").split(separator: ",").map(String.init))
    }

    /// PERMISSION_DENIED unless the caller holds `permission`; a call from
    /// another service (no principal) passes: its peer proved the internal secret.
    public func require(_ permission: String, for method: String) throws {
        guard let principal else { return }
        guard permissions.contains(permission) else {
            throw RPCError(.permissionDenied, "\(method) needs permission \(permission); \(principal) does not have it")
        }
    }
}
