/// A rating slip: one player's rated play at one table.
public struct RatingSlip: Sendable, Equatable {
    public enum Status: String, Sendable { case open = "OPEN", closed = "CLOSED" }

    public var slipID: String
    public var playerID: String
    public var visitID: String
    public var tableID: String
    public var settings: GameSettings
    public var averageBet: Double
    public var status: Status
    public var startedAtMillis: Int64
    public var endedAtMillis: Int64?
    public var durationSeconds: Int64?

    public init(
        slipID: String, playerID: String, visitID: String, tableID: String, settings: GameSettings, averageBet: Double,
        status: Status = .open, startedAtMillis: Int64, endedAtMillis: Int64? = nil, durationSeconds: Int64? = nil
    ) {
        self.slipID = slipID
        self.playerID = playerID
        self.visitID = visitID
        self.tableID = tableID
        self.settings = settings
        self.averageBet = averageBet
        self.status = status
        self.startedAtMillis = startedAtMillis
        self.endedAtMillis = endedAtMillis
        self.durationSeconds = durationSeconds
    }

    /// Longest play one slip may rate.
    public static let maxDurationSeconds: Int64 = 7 * 24 * 3600

    /// Refuses settings and bets outside what any table could mean.
    public static func validate(settings: GameSettings, averageBet: Double) throws {
        guard settings.houseEdgePercent.isFinite, settings.houseEdgePercent > 0, settings.houseEdgePercent <= 100 else {
            throw LoyaltyError.invalidArgument("house_edge_percent must be in (0, 100] (got \(settings.houseEdgePercent))")
        }
        guard settings.decisionsPerHour.isFinite, settings.decisionsPerHour > 0, settings.decisionsPerHour <= 10_000 else {
            throw LoyaltyError.invalidArgument("decisions_per_hour must be in (0, 10000] (got \(settings.decisionsPerHour))")
        }
        guard settings.pointsPerTheoreticalWin.isFinite, settings.pointsPerTheoreticalWin >= 0,
            settings.pointsPerTheoreticalWin <= 1_000
        else {
            throw LoyaltyError.invalidArgument(
                "points_per_theoretical_win must be in [0, 1000] (got \(settings.pointsPerTheoreticalWin))")
        }
        try validate(averageBet: averageBet)
    }

    public static func validate(averageBet: Double) throws {
        guard averageBet.isFinite, averageBet > 0, averageBet <= 1_000_000 else {
            throw LoyaltyError.invalidArgument("average_bet must be in (0, 1000000] (got \(averageBet))")
        }
    }

    public static func validate(durationSeconds: Int64) throws {
        guard (0...maxDurationSeconds).contains(durationSeconds) else {
            throw LoyaltyError.invalidArgument("duration_seconds must be in [0, \(maxDurationSeconds)] (got \(durationSeconds))")
        }
    }

    /// Points this slip earns for `durationSeconds` of play at `averageBet`.
    public func points(averageBet: Double, durationSeconds: Int64) -> Int64 {
        TheoreticalWin.points(averageBet: averageBet, settings: settings, durationSeconds: durationSeconds)
    }

    /// Same slip request again (a retried start)?
    func sameStart(as other: RatingSlip) -> Bool {
        playerID == other.playerID && visitID == other.visitID && tableID == other.tableID && settings == other.settings
            && averageBet == other.averageBet
    }
}
