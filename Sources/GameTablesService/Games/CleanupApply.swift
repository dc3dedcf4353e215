import Storage
import Wire

/// Applying an operation, all or nothing (docs/gametables.md, "All or nothing"):
///
/// 1. `begin` records which requested ids have no table (RECEIVED → IN_PROGRESS);
/// 2. `checkBatch`, per batch of 100 with the pause between batches: checks
///    the batch's rows and records progress, changing no table, so a row in
///    play fails the request before anything of it is visible, and the pause
///    holds no lock;
/// 3. `commit`: one short transaction re-checks every row, archives them,
///    writes one version row per change and marks the operation DEFERRED.
///    Readers see all of the request or none of it;
/// 4. `fail` marks it FAILED. Nothing of it was ever applied, so nothing is
///    reverted: another request's work is never undone.
extension GamesCleanupStore {
    /// Moves a RECEIVED or IN_PROGRESS operation to IN_PROGRESS, recording
    /// which requested ids have no table; nil when there is nothing to run.
    func begin(_ id: String) async throws -> CleanupOperation? {
        let now = clock.nowMillis()
        return try await database.write { tx in
            guard var op = try Self.operation(tx, id), op.status == .received || op.status == .inProgress else { return nil }
            if op.status == .received {
                var missing: [Int64] = []
                for tableID in op.requestedIDs
                where try tx.queryFirst("SELECT 1 FROM game_tables WHERE id = ?", [tableID], { _ in true }) == nil {
                    missing.append(tableID)
                }
                try tx.execute(
                    "UPDATE operations SET status = 'IN_PROGRESS', missing_ids = ?, updated_at = ? WHERE operation_id = ?",
                    [IDList.encode(missing), now, id])
                op.status = .inProgress
                op.missingIDs = missing
            }
            return op
        }
    }

    /// Checks one batch without changing a table: throws `RowFailure` for a
    /// row that cannot be archived. Records the batch as checked, so a
    /// restart resumes after it.
    func checkBatch(_ op: CleanupOperation, index: Int, ids: [Int64]) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            for id in ids {
                guard let row = try Self.table(tx, id) else { continue }  // recorded as missing when the operation began
                try Self.check(row)
            }
            try tx.execute(
                "UPDATE operations SET next_batch = ?, updated_at = ? WHERE operation_id = ? AND next_batch = ?",
                [index + 1, now, op.operationID, index])
        }
    }

    static func check(_ row: GameTableRow) throws {
        if row.inPlay { throw RowFailure(description: "table \(row.id) is in play and cannot be archived") }
    }

    /// Makes the whole operation visible in one transaction: every table of
    /// `ids` archived with the operation's `archived_at` (a version row for
    /// each one that changes), tables gone since it began added to the
    /// missing ids, and the operation DEFERRED. Throws `RowFailure`
    /// (changing nothing) when a row can no longer be archived.
    func commit(_ op: CleanupOperation, ids: [Int64]) async throws {
        let now = clock.nowMillis()
        let settled = operationsSettled
        try await database.write { tx in
            guard let current = try Self.operation(tx, op.operationID), current.status == .inProgress else { return }
            let keptBy: String? = op.action == .archive ? op.operationID : nil
            var affected: [Int64] = []
            var missing = current.missingIDs
            for id in ids {
                guard let before = try Self.table(tx, id) else {
                    missing.append(id)
                    continue
                }
                try Self.check(before)
                affected.append(id)
                if !before.active && before.archivedAtMillis == op.archivedAtMillis {
                    if let keptBy, before.keptBy == nil {
                        try tx.execute("UPDATE game_tables SET kept_by = ? WHERE id = ?", [keptBy, id])
                    }
                    continue
                }
                var after = before
                after.active = false
                after.archivedAtMillis = op.archivedAtMillis
                try tx.execute(
                    "UPDATE game_tables SET active = 0, archived_at = ?, kept_by = coalesce(?, kept_by), updated_at = ? WHERE id = ?",
                    [op.archivedAtMillis, keptBy, now, id])
                try Self.version(tx, id, "archive", op.operationID, op.actor, before.json, after.json, now)
            }
            try tx.execute(
                """
                UPDATE operations SET status = 'DEFERRED', affected_ids = ?, missing_ids = ?, updated_at = ?
                WHERE operation_id = ? AND status = 'IN_PROGRESS'
                """, [IDList.encode(affected), IDList.encode(missing), now, op.operationID])
            tx.afterCommit { settled.signal() }
        }
    }

    /// Marks an unfinished operation FAILED with the reason. Nothing of it
    /// was applied, so there is nothing to revert.
    func fail(_ op: CleanupOperation, reason: String) async throws {
        let now = clock.nowMillis()
        let settled = operationsSettled
        try await database.write { tx in
            try tx.execute(
                """
                UPDATE operations SET status = 'FAILED', failure = ?, affected_ids = '', updated_at = ?
                WHERE operation_id = ? AND status IN ('RECEIVED', 'IN_PROGRESS')
                """, [reason, now, op.operationID])
            tx.afterCommit { settled.signal() }
        }
    }

    static func version(
        _ tx: Transaction, _ tableID: Int64, _ event: String, _ operationID: String, _ actor: ChangeActor, _ before: String,
        _ after: String, _ now: Int64
    ) throws {
        try tx.execute(
            """
            INSERT INTO versions (table_id, event, actor, operation_id, before_json, after_json, created_at, correlation_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [tableID, event, actor.principal, operationID, before, after, now, actor.correlationID])
    }
}
