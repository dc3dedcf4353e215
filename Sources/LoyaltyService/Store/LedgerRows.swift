import Storage

/// Reading and writing ledger rows and accounts inside a transaction.
enum LedgerRows {
    static let columns = """
        entry_id, player_id, rating_slip_id, visit_id, transaction_type, points, balance_before, balance_after, \
        tier_before, tier_after, lifetime_before, lifetime_after, staff_id, reason, idempotency_key, correlation_id, created_at
        """

    static func entry(_ r: Row) -> LedgerEntry {
        LedgerEntry(
            entryID: r.int64(0), playerID: r.string(1), ratingSlipID: r.optionalString(2), visitID: r.optionalString(3),
            type: TransactionType(rawValue: r.string(4)) ?? .adjustment, points: r.int64(5),
            before: Account(balance: r.int64(6), lifetimePoints: r.int64(10), tier: Tier(name: r.string(8)) ?? .bronze),
            after: Account(balance: r.int64(7), lifetimePoints: r.int64(11), tier: Tier(name: r.string(9)) ?? .bronze),
            staffID: r.optionalString(12), reason: r.optionalString(13), idempotencyKey: r.string(14),
            correlationID: r.optionalString(15), createdAtMillis: r.int64(16))
    }

    static func entry(_ tx: Transaction, key: String) throws -> LedgerEntry? {
        try tx.queryFirst("SELECT \(columns) FROM loyalty_ledger WHERE idempotency_key = ?", [key], entry)
    }

    static func account(_ db: SQLConnection, _ playerID: String) throws -> (Account, updatedAt: Int64)? {
        try db.queryFirst(
            "SELECT balance, lifetime_points, tier, updated_at FROM player_loyalty WHERE player_id = ?", [playerID]
        ) { r in (Account(balance: r.int64(0), lifetimePoints: r.int64(1), tier: Tier(name: r.string(2)) ?? .bronze), r.int64(3)) }
    }

    static func save(_ tx: Transaction, _ playerID: String, _ a: Account, nowMillis: Int64) throws {
        try tx.execute(
            """
            INSERT INTO player_loyalty (player_id, balance, lifetime_points, tier, updated_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (player_id) DO UPDATE SET balance = excluded.balance, lifetime_points = excluded.lifetime_points,
                tier = excluded.tier, updated_at = excluded.updated_at
            """,
            [playerID, a.balance, a.lifetimePoints, a.tier.name, nowMillis])
    }

    /// What a new ledger row records besides the account change.
    struct NewEntry {
        var playerID: String
        var ratingSlipID: String?
        var visitID: String?
        var type: TransactionType
        var points: Int64
        var staffID: String?
        var reason: String?
        var idempotencyKey: String
        var correlationID: String
    }

    /// Applies `e.points` to the player's account and writes the ledger row,
    /// both in `tx`; a tier upgrade also writes its notification there.
    /// The writer runs one transaction at a time, so the read-modify-write of
    /// the account is serialized per player (and globally).
    static func append(
        _ tx: Transaction, _ e: NewEntry, schedule: TierSchedule, nowMillis: Int64, alerts: AlertLog
    ) throws -> LedgerEntry {
        try tx.lock(LoyaltyLocks.player(e.playerID))
        let before = try account(tx.connection, e.playerID)?.0 ?? .empty
        let after = try before.applying(e.points, schedule: schedule, playerID: e.playerID)
        let entryID = try tx.insert(
            """
            INSERT INTO loyalty_ledger (player_id, rating_slip_id, visit_id, transaction_type, points, balance_before,
                balance_after, tier_before, tier_after, lifetime_before, lifetime_after, staff_id, reason, idempotency_key,
                correlation_id, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                e.playerID, e.ratingSlipID, e.visitID, e.type.rawValue, e.points, before.balance, after.balance,
                before.tier.name, after.tier.name, before.lifetimePoints, after.lifetimePoints, e.staffID, e.reason,
                e.idempotencyKey, e.correlationID, nowMillis,
            ], returning: "entry_id")
        try save(tx, e.playerID, after, nowMillis: nowMillis)
        if after.tier > before.tier {
            try alerts.append(tx, Alert(
                kind: .tierUpgrade, playerID: e.playerID, staffID: "",
                message: "\(e.playerID) reached \(after.tier.name) with \(after.lifetimePoints) lifetime points",
                tierBefore: before.tier, tierAfter: after.tier, correlationID: e.correlationID))
        }
        return LedgerEntry(
            entryID: entryID, playerID: e.playerID, ratingSlipID: e.ratingSlipID, visitID: e.visitID, type: e.type,
            points: e.points, before: before, after: after, staffID: e.staffID, reason: e.reason,
            idempotencyKey: e.idempotencyKey, correlationID: e.correlationID, createdAtMillis: nowMillis)
    }
}
