import Foundation
import Storage

/// A staff reward (points > 0) or adjustment (points < 0), checked.
public struct ManualReward: Sendable, Equatable {
    public var playerID: String
    public var points: Int64
    public var reason: String
    public var staffID: String
    public var rewardID: String
    public var ratingSlipID: String
    public var visitID: String

    public init(
        playerID: String, points: Int64, reason: String, staffID: String, rewardID: String = "",
        ratingSlipID: String = "", visitID: String = ""
    ) {
        self.playerID = playerID
        self.points = points
        self.reason = reason
        self.staffID = staffID
        self.rewardID = rewardID
        self.ratingSlipID = ratingSlipID
        self.visitID = visitID
    }

    public var transactionType: TransactionType { points > 0 ? .manualBonus : .adjustment }

    /// The audit rules: ids well formed, reason long enough, points non-zero
    /// and within the cap. (The staff id is checked against the caller by the API.)
    public func validate(_ settings: LoyaltySettings) throws {
        try Identifiers.check(playerID, "player_id")
        try Identifiers.check(staffID, "staff_id")
        try Identifiers.check(rewardID, "reward_id", required: false)
        try Identifiers.check(visitID, "visit_id", required: false)
        if !ratingSlipID.isEmpty { try Identifiers.checkSlipID(ratingSlipID) }
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.count >= settings.minReasonLength else {
            throw LoyaltyError.invalidArgument(
                "reason must be at least \(settings.minReasonLength) characters (got \(trimmed.count))")
        }
        guard reason.utf8.count <= 1_000 else { throw LoyaltyError.invalidArgument("reason is longer than 1000 bytes") }
        guard points != 0 else { throw LoyaltyError.invalidArgument("points must not be zero") }
        guard points.magnitude <= settings.maxManualPoints.magnitude else {
            throw LoyaltyError.invalidArgument(
                "|points| must be at most \(settings.maxManualPoints) per manual reward (got \(points))")
        }
    }

    /// The deterministic idempotency key: a hash of the caller's reward id
    /// when given, else of (player, staff, points, reason, UTC day), so a
    /// retry or a double click on the same day finds the first entry.
    public func idempotencyKey(nowMillis: Int64) -> String {
        var parts: [String]
        if !rewardID.isEmpty {
            parts = ["reward", rewardID]
        } else {
            let day = nowMillis >= 0 ? nowMillis / 86_400_000 : (nowMillis + 1) / 86_400_000 - 1
            parts = ["auto", playerID, staffID, String(points), reason, String(day)]
        }
        // Length-prefixed so no two different tuples encode alike.
        var bytes: [UInt8] = []
        for p in parts {
            bytes += Array(String(p.utf8.count).utf8) + [0x3A] + Array(p.utf8)
        }
        return "manual:" + sha256Hex(bytes)
    }
}
