import Foundation
import Wire

/// The permissions LoyaltyService methods need (issue #7).
public enum LoyaltyPermission {
    public static let slip = "loyalty:slip"
    public static let admin = "loyalty:admin"
    public static let award = "loyalty:award"
    public static let viewAll = "loyalty:view_all"

    /// Method path → permission, for the gateway's defaults. GetPlayerLoyalty
    /// and ListLedger need only a token there: who may read whose account is
    /// decided here, where the player id is known.
    public static let gatewayDefaults: [String: String] = {
        typealias M = Croupier_Loyalty_V1_LoyaltyService.Method
        var table: [String: String] = [:]
        for m in [M.startRatingSlip, M.completeRatingSlip] { table[m.path] = slip }
        for m in [M.recoverSlipLoyalty, M.verifyBalance, M.rebuildBalance, M.exportLedger, M.watchAlerts] { table[m.path] = admin }
        table[M.manualReward.path] = award
        return table
    }()
}

/// Who is calling, as the gateway (or another authenticated Wire peer)
/// forwarded it. Wire accepts calls only from peers that proved the internal
/// secret, so this metadata is trusted; the service still checks every
/// permission itself rather than relying on the gateway alone.
struct Caller: Sendable {
    let principal: String?
    let permissions: Set<String>
    let correlationID: String

    init(_ context: ServerContext) {
        let forwarded = ForwardedCaller(context.metadata)
        principal = forwarded.principal
        permissions = forwarded.permissions
        let given = context.metadata["x-correlation-id"] ?? ""
        correlationID = given.isEmpty ? UUID().uuidString.lowercased() : given
    }

    func authenticated() throws -> String {
        guard let principal else { throw LoyaltyError.unauthenticated("no authenticated principal on this call") }
        return principal
    }

    func require(_ permission: String) throws {
        let who = try authenticated()
        guard permissions.contains(permission) else {
            throw LoyaltyError.permissionDenied("\(who) lacks the \(permission) permission")
        }
    }

    /// Players read their own account; staff need `loyalty:view_all` for anyone's.
    func requireSelfOrViewAll(_ playerID: String) throws {
        let who = try authenticated()
        guard who == playerID || permissions.contains(LoyaltyPermission.viewAll) else {
            throw LoyaltyError.permissionDenied("\(who) may read only its own loyalty account (reading \(playerID) needs \(LoyaltyPermission.viewAll))")
        }
    }
}
