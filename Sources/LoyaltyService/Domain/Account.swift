/// A player's loyalty account: spendable balance, lifetime points (which
/// only grow) and the tier they earn.
public struct Account: Sendable, Equatable {
    public var balance: Int64
    public var lifetimePoints: Int64
    public var tier: Tier

    public static let empty = Account(balance: 0, lifetimePoints: 0, tier: .bronze)

    public init(balance: Int64, lifetimePoints: Int64, tier: Tier) {
        self.balance = balance
        self.lifetimePoints = lifetimePoints
        self.tier = tier
    }

    /// The account after `points` (negative for an adjustment). Positive
    /// points add to lifetime points; the tier follows lifetime points and
    /// never drops. Refuses to take the balance below zero.
    public func applying(_ points: Int64, schedule: TierSchedule, playerID: String) throws -> Account {
        let (balance, overflow) = balance.addingReportingOverflow(points)
        guard !overflow else { throw LoyaltyError.invalidArgument("the balance of \(playerID) would overflow") }
        guard balance >= 0 else {
            throw LoyaltyError.failedPrecondition(
                "\(playerID) has \(self.balance) points; an adjustment of \(points) would take the balance below zero")
        }
        let (lifetime, lifetimeOverflow) = lifetimePoints.addingReportingOverflow(max(0, points))
        guard !lifetimeOverflow else { throw LoyaltyError.invalidArgument("the lifetime points of \(playerID) would overflow") }
        return Account(balance: balance, lifetimePoints: lifetime, tier: max(tier, schedule.tier(lifetimePoints: lifetime)))
    }
}
