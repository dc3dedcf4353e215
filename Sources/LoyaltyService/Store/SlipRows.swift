import Storage

/// The `rating_slips` table.
enum SlipRows {
    static let columns = """
        slip_id, player_id, visit_id, table_id, house_edge_percent, decisions_per_hour,
            points_per_theoretical_win, average_bet, status, started_at, ended_at, duration_seconds
        """

    static func slip(_ db: SQLConnection, _ slipID: String) throws -> RatingSlip? {
        try db.queryFirst("SELECT \(columns) FROM rating_slips WHERE slip_id = ?", [slipID], slip)
    }

    /// A row selected with `columns`.
    static func slip(_ r: Row) -> RatingSlip {
        RatingSlip(
            slipID: r.string(0), playerID: r.string(1), visitID: r.string(2), tableID: r.string(3),
            settings: GameSettings(houseEdgePercent: r.double(4), decisionsPerHour: r.double(5), pointsPerTheoreticalWin: r.double(6)),
            averageBet: r.double(7), status: RatingSlip.Status(rawValue: r.string(8)) ?? .open,
            startedAtMillis: r.int64(9), endedAtMillis: r.optionalInt64(10), durationSeconds: r.optionalInt64(11))
    }

    /// The slip's gameplay entry, if it has one.
    static func gameplayEntry(_ db: SQLConnection, _ slipID: String) throws -> LedgerEntry? {
        try db.queryFirst(
            "SELECT \(LedgerRows.columns) FROM loyalty_ledger WHERE rating_slip_id = ? AND transaction_type = 'GAMEPLAY'", [slipID],
            LedgerRows.entry)
    }

    static func insert(_ tx: Transaction, _ s: RatingSlip, correlationID: String) throws {
        try tx.execute(
            """
            INSERT INTO rating_slips (slip_id, player_id, visit_id, table_id, house_edge_percent, decisions_per_hour,
                points_per_theoretical_win, average_bet, status, started_at, correlation_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'OPEN', ?, ?)
            """,
            [s.slipID, s.playerID, s.visitID, s.tableID, s.settings.houseEdgePercent, s.settings.decisionsPerHour,
             s.settings.pointsPerTheoreticalWin, s.averageBet, s.startedAtMillis, correlationID])
    }

    static func close(_ tx: Transaction, _ s: RatingSlip) throws {
        try tx.execute(
            "UPDATE rating_slips SET status = 'CLOSED', average_bet = ?, ended_at = ?, duration_seconds = ? WHERE slip_id = ?",
            [s.averageBet, s.endedAtMillis, s.durationSeconds, s.slipID])
    }
}
