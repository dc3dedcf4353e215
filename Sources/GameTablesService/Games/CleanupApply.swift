import Storage
import Wire

/// Applying an operation, all or nothing (docs/gametables.md, "All or nothing"):
///
/// 1. `begin` records which requested ids have no table (RECEIVED → IN_PROGRESS);
/// 2. `checkBatch`, per batch of 100 with the pause between batches: reads
///    and checks the batch's rows, changing nothing, so a row in play fails
///    the request before anything of it is visible; neither the checks nor
///    the pause hold a write lock, and they cost no commit;
/// 3. `commit`: one short transaction re-checks every row, archives them,
///    writes one version row per change and marks the operation DEFERRED.
///    Readers see all of the request or none of it;
/// 4. `fail` marks it FAILED. Nothing of it was ever applied, so nothing is
///    reverted: another request's work is never undone.
extension GamesCleanupStore {
    /// Takes the operation's lease for `runner` and moves a RECEIVED or
    /// IN_PROGRESS operation to IN_PROGRESS, recording which requested ids
    /// have no table; nil when there is nothing to run here (final, or
    /// another runner's lease is live).
    func begin(_ id: String, runner: String, leaseMillis: Int64) async throws -> CleanupOperation? {
        let now = clock.nowMillis()
        return try await database.write { tx in
            guard try Self.lease(tx, id, runner: runner, until: now + leaseMillis, now: now),
                  var op = try Self.operation(tx, id), op.status == .received || op.status == .inProgress
            else { return nil }
            if op.status == .received {
                let list = SQLInList(op.requestedIDs)
                let present = Set(try tx.query("SELECT id FROM game_tables WHERE id IN \(list.sql)", list.arguments) { $0.int64(0) })
                let missing = op.requestedIDs.filter { !present.contains($0) }
                try tx.execute(
                    "UPDATE operations SET status = 'IN_PROGRESS', missing_ids = ?, updated_at = ? WHERE operation_id = ?",
                    [IDList.encode(missing), now, id])
                op.status = .inProgress
                op.missingIDs = missing
            }
            return op
        }
    }

    /// Renews `runner`'s lease on an operation it runs; false when the lease passed to another runner.
    func renew(_ id: String, runner: String, leaseMillis: Int64) async throws -> Bool {
        let now = clock.nowMillis()
        return try await database.write { tx in try Self.lease(tx, id, runner: runner, until: now + leaseMillis, now: now) }
    }

    /// The lease on an unfinished operation, taken or renewed: its runner's own, or one that ran out.
    static func lease(_ tx: Transaction, _ id: String, runner: String, until: Int64, now: Int64) throws -> Bool {
        try tx.execute(
            """
            UPDATE operations SET runner = ?, lease_until = ?
            WHERE operation_id = ? AND status IN ('RECEIVED', 'IN_PROGRESS') AND (runner = ? OR lease_until <= ?)
            """, [runner, until, id, runner, now]) == 1
    }

    /// Checks one batch in a read transaction: throws `RowFailure` for a
    /// row that cannot be archived (one in play).
    func checkBatch(_ ids: [Int64]) async throws {
        let list = SQLInList(ids)
        let blocked = try await database.read { db in
            try db.queryFirst("SELECT id FROM game_tables WHERE in_play = 1 AND id IN \(list.sql) ORDER BY id LIMIT 1", list.arguments) {
                $0.int64(0)
            }
        }
        if let blocked { throw Self.inPlay(blocked) }
    }

    static func inPlay(_ id: Int64) -> RowFailure { RowFailure(description: "table \(id) is in play and cannot be archived") }

    /// The rows of `ids` that exist, by id, in one statement.
    static func tables(_ tx: Transaction, _ ids: [Int64]) throws -> [Int64: GameTableRow] {
        let list = SQLInList(ids)
        let rows = try tx.query("SELECT \(tableColumns) FROM game_tables WHERE id IN \(list.sql)", list.arguments, table)
        return Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Makes the whole operation visible in one transaction: every table of
    /// `ids` archived with the operation's `archived_at` (a version row for
    /// each one that changes), tables gone since it began added to the
    /// missing ids, and the operation DEFERRED. Throws `RowFailure`
    /// (changing nothing) when a row can no longer be archived.
    func commit(_ op: CleanupOperation, ids: [Int64]) async throws {
        let now = clock.nowMillis()
        let settled = self.settled
        try await database.write { tx in
            guard let current = try Self.operation(tx, op.operationID), current.status == .inProgress else { return }
            let keptBy: String? = op.action == .archive ? op.operationID : nil
            var affected: [Int64] = []
            var missing = current.missingIDs
            let rows = try Self.tables(tx, ids)
            for id in ids {
                guard let before = rows[id] else {
                    missing.append(id)
                    continue
                }
                if before.inPlay { throw Self.inPlay(id) }
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
            tx.afterCommit { settled.raise(op.operationID) }
        }
    }

    /// Marks an unfinished operation FAILED with the reason. Nothing of it
    /// was applied, so there is nothing to revert.
    func fail(_ op: CleanupOperation, reason: String) async throws {
        let now = clock.nowMillis()
        let settled = self.settled
        try await database.write { tx in
            try tx.execute(
                """
                UPDATE operations SET status = 'FAILED', failure = ?, affected_ids = '', updated_at = ?
                WHERE operation_id = ? AND status IN ('RECEIVED', 'IN_PROGRESS')
                """, [reason, now, op.operationID])
            tx.afterCommit { settled.raise(op.operationID) }
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
