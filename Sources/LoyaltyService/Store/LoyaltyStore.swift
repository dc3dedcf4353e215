import Foundation
import Storage
import Wire

/// Every loyalty state change, each one SQLite transaction on the database's
/// single writer (group commit), so:
/// - a slip completion closes the slip, writes the ledger row and updates the
///   balance together or not at all;
/// - balance changes are serialized: concurrent rewards and completions for
///   one player all count;
/// - an idempotency key that is already in the ledger returns its entry as a
///   replay instead of writing again, even across restarts.
public final class LoyaltyStore: Sendable {
    public let database: Database
    public let alerts: AlertLog
    let settings: LoyaltySettings
    let clock: any StorageClock

    public init(path: String, settings: LoyaltySettings = LoyaltySettings(), clock: any StorageClock = SystemClock(),
                options: Database.Options = Database.Options()) throws {
        // On PostgreSQL every write locks the keys it decides on (`LoyaltyLocks`), instead of
        // SERIALIZABLE's retries: rewards and slips touch the ledger's indexes all at once.
        var options = options
        options.postgresWrites = .keyLocked
        database = try Database(path: path, owner: "loyalty", migrations: LoyaltySchema.migrations, options: options)
        alerts = AlertLog(events: EventLog(database: database, clock: clock))
        self.settings = settings
        self.clock = clock
    }

    public func close() { database.close() }

    /// Every schema step of the loyalty database (for tools that open the file themselves).
    public static var migrations: [Migration] { LoyaltySchema.migrations }

    // MARK: Rating slips

    /// Opens a slip. With a caller-chosen id, the same start again returns the
    /// existing slip (`replay`); a different slip under that id is ALREADY_EXISTS.
    public func startSlip(_ slip: RatingSlip, correlationID: String) async throws -> (RatingSlip, replay: Bool) {
        let now = clock.nowMillis()
        return try await database.write(locking: [LoyaltyLocks.slip(slip.slipID)]) { tx in
            if let existing = try SlipRows.slip(tx.connection, slip.slipID) {
                guard existing.sameStart(as: slip) else {
                    throw LoyaltyError.alreadyExists(
                        "slip \(slip.slipID) already exists for player \(existing.playerID) at table \(existing.tableID) with other settings")
                }
                return (existing, true)
            }
            var opened = slip
            opened.startedAtMillis = now
            opened.status = .open
            try SlipRows.insert(tx, opened, correlationID: correlationID)
            return (opened, false)
        }
    }

    /// Closes the slip and accrues its points in one transaction. A closed
    /// slip returns its gameplay entry as a replay; a closed slip without one
    /// (a partial completion from before this service) is left to RecoverSlipLoyalty.
    public func completeSlip(
        slipID: String, averageBet: Double?, durationSeconds: Int64?, correlationID: String
    ) async throws -> (RatingSlip, Accrual) {
        let now = clock.nowMillis()
        let schedule = settings.tiers
        let alerts = self.alerts
        return try await database.write(locking: [LoyaltyLocks.slip(slipID)]) { tx in
            guard var slip = try SlipRows.slip(tx.connection, slipID) else {
                throw LoyaltyError.notFound("rating slip \(slipID) does not exist")
            }
            if slip.status == .closed {
                guard let entry = try LedgerRows.entry(tx, key: slipID) else {
                    throw LoyaltyError.failedPrecondition(
                        "rating slip \(slipID) is closed but has no loyalty entry; an admin must run RecoverSlipLoyalty")
                }
                return (slip, Accrual(entry: entry, replay: true))
            }
            let duration = durationSeconds ?? max(0, (now - slip.startedAtMillis) / 1000)
            slip.averageBet = averageBet ?? slip.averageBet
            slip.status = .closed
            slip.endedAtMillis = now
            slip.durationSeconds = min(duration, RatingSlip.maxDurationSeconds)
            try SlipRows.close(tx, slip)
            let entry = try LedgerRows.append(
                tx, Self.gameplayEntry(slip, correlationID: correlationID), schedule: schedule, nowMillis: now, alerts: alerts)
            return (slip, Accrual(entry: entry, replay: false))
        }
    }

    /// Accrues a CLOSED slip that has no gameplay entry, from the play stored
    /// on the slip; returns the existing entry (replay) if there is one.
    public func recoverSlip(slipID: String, correlationID: String) async throws -> (RatingSlip, Accrual) {
        let now = clock.nowMillis()
        let schedule = settings.tiers
        let alerts = self.alerts
        return try await database.write(locking: [LoyaltyLocks.slip(slipID)]) { tx in
            guard let slip = try SlipRows.slip(tx.connection, slipID) else {
                throw LoyaltyError.notFound("rating slip \(slipID) does not exist")
            }
            guard slip.status == .closed else {
                throw LoyaltyError.failedPrecondition("rating slip \(slipID) is still open; complete it instead of recovering it")
            }
            if let entry = try LedgerRows.entry(tx, key: slipID) { return (slip, Accrual(entry: entry, replay: true)) }
            let entry = try LedgerRows.append(
                tx, Self.gameplayEntry(slip, correlationID: correlationID), schedule: schedule, nowMillis: now, alerts: alerts)
            return (slip, Accrual(entry: entry, replay: false))
        }
    }

    /// The gameplay entry of a closed slip; its idempotency key is the slip id.
    static func gameplayEntry(_ slip: RatingSlip, correlationID: String) -> LedgerRows.NewEntry {
        LedgerRows.NewEntry(
            playerID: slip.playerID, ratingSlipID: slip.slipID, visitID: slip.visitID.isEmpty ? nil : slip.visitID,
            type: .gameplay, points: slip.points(averageBet: slip.averageBet, durationSeconds: slip.durationSeconds ?? 0),
            staffID: nil, reason: nil, idempotencyKey: slip.slipID, correlationID: correlationID)
    }

    // MARK: Manual rewards

    /// Issues a validated manual reward once per idempotency key. The same
    /// key with other parameters is ALREADY_EXISTS; a replay is answered even
    /// when the staff member is at the rate limit (it changes nothing).
    public func manualReward(_ reward: ManualReward, correlationID: String) async throws -> Accrual {
        let now = clock.nowMillis()
        let key = reward.idempotencyKey(nowMillis: now)
        let settings = self.settings
        let alerts = self.alerts
        return try await database.write(locking: [LoyaltyLocks.reward(key), LoyaltyLocks.staff(reward.staffID)]) { tx in
            if let entry = try LedgerRows.entry(tx, key: key) {
                try Self.checkSameReward(entry, reward)
                return Accrual(entry: entry, replay: true)
            }
            // The rate limit counts only rewards actually issued (a replay returned above): in the
            // window and in the last hour, one indexed count; the time of the limit-th most recent
            // reward is looked up only when the window is full.
            let window = SlidingWindow(limit: settings.manualRewardsPerMinute, windowMillis: settings.manualRewardWindowMillis)
            let windowStart: Int64 = now - window.windowMillis
            let hourStart: Int64 = now - 3_600_000
            let counts: (inWindow: Int, lastHour: Int)? = try tx.queryFirst(
                """
                SELECT coalesce(sum(CASE WHEN created_at > ? THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN created_at > ? THEN 1 ELSE 0 END), 0) FROM loyalty_ledger
                WHERE staff_id = ? AND created_at > ?
                """,
                [windowStart, hourStart, reward.staffID, min(windowStart, hourStart)]
            ) { row in (row.int(0), row.int(1)) }
            let lastHour = counts?.lastHour ?? 0
            if let inWindow = counts?.inWindow, inWindow >= window.limit {
                let offset: Int = window.limit - 1
                let mustLeave: Int64 = try tx.queryFirst(
                    "SELECT created_at FROM loyalty_ledger WHERE staff_id = ? AND created_at > ? ORDER BY created_at DESC LIMIT 1 OFFSET ?",
                    [reward.staffID, windowStart, offset], { row in row.int64(0) }) ?? now
                throw LoyaltyError.rateLimited(
                    "staff \(reward.staffID) issued \(window.limit) manual rewards within \(window.windowMillis / 1000) s (the limit)",
                    retryAfterMillis: window.wait(until: mustLeave, leaves: now))
            }
            let entry = try LedgerRows.append(
                tx,
                LedgerRows.NewEntry(
                    playerID: reward.playerID, ratingSlipID: reward.ratingSlipID.isEmpty ? nil : reward.ratingSlipID,
                    visitID: reward.visitID.isEmpty ? nil : reward.visitID, type: reward.transactionType,
                    points: reward.points, staffID: reward.staffID, reason: reward.reason, idempotencyKey: key,
                    correlationID: correlationID),
                schedule: settings.tiers, nowMillis: now, alerts: alerts)
            if lastHour + 1 > settings.manualRewardAlertPerHour {
                // One alert per staff member and UTC hour.
                let marked = try tx.execute(
                    "INSERT OR IGNORE INTO alert_marks (kind, subject, bucket) VALUES (?, ?, ?)",
                    [Alert.Kind.manualRewardFrequency.rawValue, reward.staffID, now / 3_600_000])
                if marked > 0 {
                    try alerts.append(tx, Alert(
                        kind: .manualRewardFrequency, playerID: reward.playerID, staffID: reward.staffID,
                        message: "staff \(reward.staffID) issued \(lastHour + 1) manual rewards within an hour (more than \(settings.manualRewardAlertPerHour))",
                        correlationID: correlationID))
                }
            }
            return Accrual(entry: entry, replay: false)
        }
    }

    static func checkSameReward(_ entry: LedgerEntry, _ reward: ManualReward) throws {
        var conflicts: [String] = []
        if entry.playerID != reward.playerID { conflicts.append("player_id \(entry.playerID)") }
        if entry.points != reward.points { conflicts.append("points \(entry.points)") }
        if entry.staffID != reward.staffID { conflicts.append("staff_id \(entry.staffID ?? "")") }
        if entry.reason != reward.reason { conflicts.append("reason '\(entry.reason ?? "")'") }
        guard conflicts.isEmpty else {
            let what = reward.rewardID.isEmpty ? "this reward" : "reward_id \(reward.rewardID)"
            throw LoyaltyError.alreadyExists(
                "\(what) was already issued as ledger entry \(entry.entryID) with different parameters: \(conflicts.joined(separator: ", "))")
        }
    }

    /// Records that a caller tried to issue a reward under another staff id.
    public func recordStaffMismatch(caller: String, claimed: String, playerID: String, correlationID: String) async throws {
        let alerts = self.alerts
        try await database.write { tx in
            try alerts.append(tx, Alert(
                kind: .staffIDMismatch, playerID: playerID, staffID: caller,
                message: "\(caller) tried to issue a manual reward as staff \(claimed)", correlationID: correlationID))
        }
    }
}
