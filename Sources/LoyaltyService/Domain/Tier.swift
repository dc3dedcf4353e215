/// Loyalty tiers, lowest first. A player's tier follows lifetime points,
/// which only grow, so a tier never goes down.
public enum Tier: Int, Comparable, CaseIterable, Sendable {
    case bronze = 1, silver, gold, platinum

    public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }

    /// The name stored in the database and shown in logs.
    public var name: String {
        switch self {
        case .bronze: return "BRONZE"
        case .silver: return "SILVER"
        case .gold: return "GOLD"
        case .platinum: return "PLATINUM"
        }
    }

    public init?(name: String) {
        guard let t = Tier.allCases.first(where: { $0.name == name }) else { return nil }
        self = t
    }
}

/// Lifetime-point thresholds of each tier (defaults BRONZE 0, SILVER 1,000,
/// GOLD 5,000, PLATINUM 20,000).
public struct TierSchedule: Sendable, Equatable {
    public let silver: Int64
    public let gold: Int64
    public let platinum: Int64

    public static let standard = TierSchedule(uncheckedSilver: 1_000, gold: 5_000, platinum: 20_000)

    /// Thresholds must be positive and strictly increasing.
    public init(silver: Int64, gold: Int64, platinum: Int64) throws {
        guard silver > 0, gold > silver, platinum > gold else {
            throw LoyaltyError.invalidArgument(
                "tier thresholds must be 0 < SILVER < GOLD < PLATINUM (got \(silver), \(gold), \(platinum))")
        }
        self.init(uncheckedSilver: silver, gold: gold, platinum: platinum)
    }

    private init(uncheckedSilver silver: Int64, gold: Int64, platinum: Int64) {
        self.silver = silver
        self.gold = gold
        self.platinum = platinum
    }

    public func threshold(_ tier: Tier) -> Int64 {
        switch tier {
        case .bronze: return 0
        case .silver: return silver
        case .gold: return gold
        case .platinum: return platinum
        }
    }

    public func tier(lifetimePoints: Int64) -> Tier {
        Tier.allCases.last { threshold($0) <= lifetimePoints } ?? .bronze
    }

    public func next(after tier: Tier) -> Tier? { Tier(rawValue: tier.rawValue + 1) }

    /// Progress towards the next tier, 0–100: lifetime points as a share of
    /// the next tier's threshold (seed 001's formula), rounded down so 100
    /// means the tier is reached; PLATINUM is always 100.
    public func progress(lifetimePoints: Int64) -> Int32 {
        guard let next = next(after: tier(lifetimePoints: lifetimePoints)) else { return 100 }
        // In 128 bits: thresholds may be configured up to Int64.max, so lifetime × 100 may not fit in 64.
        let share = threshold(next).dividingFullWidth(max(0, lifetimePoints).multipliedFullWidth(by: 100)).quotient
        return Int32(min(100, share))
    }
}
