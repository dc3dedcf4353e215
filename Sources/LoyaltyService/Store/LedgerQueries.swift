import Storage

/// A stored account next to what its ledger adds up to.
public struct BalanceCheck: Sendable, Equatable {
    public var playerID: String
    public var stored: Account
    public var ledger: Account
    public var consistent: Bool { stored == ledger }
}

/// Reads (on reader connections, each against one committed snapshot) and
/// the ledger-derived repairs.
extension LoyaltyStore {
    public func account(_ playerID: String) async throws -> (account: Account, updatedAtMillis: Int64)? {
        try await database.read { db in try LedgerRows.account(db, playerID).map { ($0.0, $0.updatedAt) } }
    }

    /// One player's entries, newest first, with ids below `beforeEntryID`
    /// (0: from the newest), created in [fromMillis, toMillis) (0: open).
    public func ledger(
        playerID: String, beforeEntryID: Int64, fromMillis: Int64, toMillis: Int64, limit: Int
    ) async throws -> [LedgerEntry] {
        try await database.read { db in
            try db.query(
                """
                SELECT \(LedgerRows.columns) FROM loyalty_ledger
                WHERE player_id = ? AND entry_id < ? AND created_at >= ? AND created_at < ?
                ORDER BY entry_id DESC LIMIT ?
                """,
                [playerID, beforeEntryID > 0 ? beforeEntryID : Int64.max, fromMillis, toMillis > 0 ? toMillis : Int64.max, limit],
                LedgerRows.entry)
        }
    }

    /// Entries oldest first after `afterEntryID`, created in [fromMillis, toMillis), optionally one player's.
    public func export(
        afterEntryID: Int64, fromMillis: Int64, toMillis: Int64, playerID: String?, limit: Int
    ) async throws -> [LedgerEntry] {
        try await database.read { db in
            try db.query(
                """
                SELECT \(LedgerRows.columns) FROM loyalty_ledger
                WHERE entry_id > ? AND created_at >= ? AND created_at < ? AND (? IS NULL OR player_id = ?)
                ORDER BY entry_id LIMIT ?
                """,
                [afterEntryID, fromMillis, toMillis > 0 ? toMillis : Int64.max, playerID, playerID, limit],
                LedgerRows.entry)
        }
    }

    /// Stored accounts against their ledgers: one player's, or everyone's.
    public func verify(playerID: String?) async throws -> [BalanceCheck] {
        let schedule = settings.tiers
        return try await database.read { db in try Self.checks(db, playerID: playerID, schedule: schedule) }
    }

    static func checks(_ db: SQLConnection, playerID: String?, schedule: TierSchedule) throws -> [BalanceCheck] {
        let filter = playerID == nil ? "" : " WHERE player_id = ?"
        let arguments: [any SQLBindable] = playerID.map { [$0] } ?? []
        var checks: [String: BalanceCheck] = [:]
        for (player, stored) in try db.query(
            "SELECT player_id, balance, lifetime_points, tier FROM player_loyalty\(filter)", arguments,
            { r in (r.string(0), Account(balance: r.int64(1), lifetimePoints: r.int64(2), tier: Tier(name: r.string(3)) ?? .bronze)) })
        {
            checks[player] = BalanceCheck(playerID: player, stored: stored, ledger: .empty)
        }
        for (player, sum, lifetime) in try db.query(
            "SELECT player_id, sum(points), sum(max(points, 0)) FROM loyalty_ledger\(filter) GROUP BY player_id", arguments,
            { r in (r.string(0), r.int64(1), r.int64(2)) })
        {
            let ledger = Account(balance: sum, lifetimePoints: lifetime, tier: schedule.tier(lifetimePoints: lifetime))
            checks[player, default: BalanceCheck(playerID: player, stored: .empty, ledger: .empty)].ledger = ledger
        }
        return checks.values.sorted { $0.playerID < $1.playerID }
    }

    /// Sets a player's stored account to what the ledger adds up to.
    public func rebuild(playerID: String) async throws -> BalanceCheck {
        let schedule = settings.tiers
        let now = clock.nowMillis()
        return try await database.write(locking: [LoyaltyLocks.player(playerID)]) { tx in
            guard let check = try Self.checks(tx.connection, playerID: playerID, schedule: schedule).first else {
                throw LoyaltyError.notFound("player \(playerID) has no loyalty account or ledger entries")
            }
            if !check.consistent {
                try LedgerRows.save(tx, playerID, check.ledger, nowMillis: now)
            }
            return check
        }
    }
}
