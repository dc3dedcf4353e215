import Foundation

/// How a table converts play into points.
public struct GameSettings: Sendable, Equatable {
    public var houseEdgePercent: Double
    public var decisionsPerHour: Double
    public var pointsPerTheoreticalWin: Double

    public init(houseEdgePercent: Double, decisionsPerHour: Double, pointsPerTheoreticalWin: Double) {
        self.houseEdgePercent = houseEdgePercent
        self.decisionsPerHour = decisionsPerHour
        self.pointsPerTheoreticalWin = pointsPerTheoreticalWin
    }
}

/// Theoretical win = average bet × decisions/hour × hours played × house
/// edge; points = floor(theoretical win × conversion rate).
///
/// Computed in decimal from each input's shortest decimal spelling, with
/// one division at the end, so 25 × 60 × 1 h × 2 % × 0.1 is exactly 3
/// points, not 2.9999999 → 2 as binary floating point would make it.
public enum TheoreticalWin {
    public static func points(averageBet: Double, settings: GameSettings, durationSeconds: Int64) -> Int64 {
        let numerator = decimal(averageBet) * decimal(settings.decisionsPerHour) * Decimal(durationSeconds)
            * decimal(settings.houseEdgePercent) * decimal(settings.pointsPerTheoreticalWin)
        // seconds → hours (3,600) and percent → fraction (100).
        var value = numerator / Decimal(360_000)
        var floored = Decimal()
        NSDecimalRound(&floored, &value, 0, .down)
        return max(0, Int64(truncating: floored as NSDecimalNumber))
    }

    private static func decimal(_ x: Double) -> Decimal { Decimal(string: "\(x)") ?? Decimal(x) }
}
