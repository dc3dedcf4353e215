import Storage

/// What the seed's runbooks look up, without writing anything: a slip with
/// its gameplay entry (runbook 1: "verify slip status, check the ledger
/// entry"), slips that closed without their accrual, the ledger by
/// correlation id, idempotency key, staff member or slip (runbook 2 and the
/// staff audit), and manual reward frequency per staff member.
extension LoyaltyStore {
    /// A slip as a runbook reads it.
    public struct SlipView: Sendable, Equatable {
        public let slip: RatingSlip
        public let entry: LedgerEntry?
        /// Closed without its gameplay entry: `RecoverSlipLoyalty` repairs it.
        public var needsRecovery: Bool { slip.status == .closed && entry == nil }
    }

    public func slipView(_ slipID: String) async throws -> SlipView? {
        try await database.read { db in
            guard let slip = try SlipRows.slip(db, slipID) else { return nil }
            return SlipView(slip: slip, entry: try SlipRows.gameplayEntry(db, slipID))
        }
    }

    /// Slips newest first (by start, then id) before the `before` cursor.
    public func slips(
        playerID: String?, status: RatingSlip.Status?, fromMillis: Int64, toMillis: Int64, needsRecoveryOnly: Bool,
        before: (startedAt: Int64, slipID: String)?, limit: Int
    ) async throws -> [SlipView] {
        let cursor = before ?? (Int64.max, "")
        return try await database.read { db in
            let slips = try db.query(
                """
                SELECT \(SlipRows.columns) FROM rating_slips s
                WHERE (?1 IS NULL OR player_id = ?1) AND (?2 IS NULL OR status = ?2) AND started_at >= ?3 AND started_at < ?4
                  AND (started_at < ?5 OR (started_at = ?5 AND (?6 = '' OR slip_id < ?6)))
                  AND (NOT ?7 OR (status = 'CLOSED' AND NOT EXISTS (
                        SELECT 1 FROM loyalty_ledger l WHERE l.rating_slip_id = s.slip_id AND l.transaction_type = 'GAMEPLAY')))
                ORDER BY started_at DESC, slip_id DESC LIMIT ?8
                """,
                [playerID, status?.rawValue, fromMillis, toMillis > 0 ? toMillis : Int64.max, cursor.startedAt, cursor.slipID,
                 needsRecoveryOnly, limit],
                SlipRows.slip)
            return try slips.map { SlipView(slip: $0, entry: try SlipRows.gameplayEntry(db, $0.slipID)) }
        }
    }

    /// Ledger entries matching every given filter, newest first, below `beforeEntryID` (0: from the newest).
    public func searchLedger(
        correlationID: String?, idempotencyKey: String?, staffID: String?, ratingSlipID: String?, beforeEntryID: Int64, limit: Int
    ) async throws -> [LedgerEntry] {
        try await database.read { db in
            try db.query(
                """
                SELECT \(LedgerRows.columns) FROM loyalty_ledger
                WHERE (?1 IS NULL OR correlation_id = ?1) AND (?2 IS NULL OR idempotency_key = ?2)
                  AND (?3 IS NULL OR staff_id = ?3) AND (?4 IS NULL OR rating_slip_id = ?4) AND entry_id < ?5
                ORDER BY entry_id DESC LIMIT ?6
                """,
                [correlationID, idempotencyKey, staffID, ratingSlipID, beforeEntryID > 0 ? beforeEntryID : Int64.max, limit],
                LedgerRows.entry)
        }
    }

    /// Manual rewards per staff member.
    public struct StaffFrequency: Sendable, Equatable {
        public let staffID: String
        public let rewards: Int
        public let points: Int64
        public let firstAtMillis: Int64
        public let lastAtMillis: Int64
        /// The most issued within any 60 s of the range.
        public let busiestMinute: Int
    }

    public func manualRewardFrequency(fromMillis: Int64, toMillis: Int64, staffID: String?) async throws -> [StaffFrequency] {
        let rows = try await database.read { db in
            try db.query(
                """
                SELECT staff_id, created_at, points FROM loyalty_ledger
                WHERE staff_id IS NOT NULL AND (?1 IS NULL OR staff_id = ?1) AND created_at >= ?2 AND created_at < ?3
                ORDER BY staff_id, created_at
                """, [staffID, fromMillis, toMillis], { ($0.string(0), $0.int64(1), $0.int64(2)) })
        }
        var out: [StaffFrequency] = []
        var start = 0
        while start < rows.count {
            var end = start
            while end < rows.count && rows[end].0 == rows[start].0 { end += 1 }
            let times = rows[start..<end].map(\.1)
            var busiest = 0
            var low = times.startIndex
            for high in times.indices {
                while times[high] - times[low] >= 60_000 { low += 1 }
                busiest = max(busiest, high - low + 1)
            }
            out.append(StaffFrequency(
                staffID: rows[start].0, rewards: end - start, points: rows[start..<end].reduce(0) { $0 + $1.2 },
                firstAtMillis: times.first!, lastAtMillis: times.last!, busiestMinute: busiest))
            start = end
        }
        return out
    }
}
