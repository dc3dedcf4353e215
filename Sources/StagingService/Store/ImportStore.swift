import Foundation
import Storage
import Wire

/// Import runs: the durable upload, then the merge into staging.
public struct ImportStore: Sendable {
    let database: Database
    let locks: LockStore
    let clock: any StorageClock

    static let runColumns = """
        run_id, game_slug, status, source, entities_received, entities_merged, entities_removed, created_at, started_at, \
        finished_at, error, diff_message_id
        """
    static func run(_ r: Row) -> Croupier_Staging_V1_ImportRun {
        .with {
            $0.importRunId = r.string(0)
            $0.gameSlug = r.string(1)
            $0.status = status(r.string(2))
            $0.source = r.string(3)
            $0.entitiesReceived = r.int64(4)
            $0.entitiesMerged = r.int64(5)
            $0.entitiesRemoved = r.int64(6)
            $0.createdAtMs = r.int64(7)
            $0.startedAtMs = r.optionalInt64(8) ?? 0
            $0.finishedAtMs = r.optionalInt64(9) ?? 0
            $0.error = r.string(10)
            $0.diffMessageId = r.int64(11)
        }
    }

    static func status(_ s: String) -> Croupier_Staging_V1_ImportStatus {
        switch s {
        case "RECEIVING", "QUEUED": return .queued
        case "RUNNING": return .running
        case "SUCCEEDED": return .succeeded
        case "FAILED": return .failed
        default: return .unspecified
        }
    }

    /// Opens a run and takes the game's import lock for it; FAILED_PRECONDITION
    /// naming the run that holds the lock, or the run still to merge, when
    /// another import is under way.
    func begin(game: String, source: String, request: RequestContext = RequestContext()) async throws -> String {
        let runID = "run_" + UUID().uuidString.lowercased()
        let now = clock.nowMillis()
        let locks = self.locks
        return try await database.write { tx in
            guard try locks.acquire(tx, game: game, .importLock, holder: runID) else {
                let holder = try locks.holder(tx, game: game, .importLock) ?? "another run"
                throw RPCError(.failedPrecondition, "an import of \(game) is already under way: \(holder)")
            }
            // An uploaded run (QUEUED, or RUNNING) is stored whole and was acknowledged: it merges
            // whatever its lease says (a stalled heartbeat let it run out), and this import waits for it.
            if let pending = try tx.queryFirst(
                "SELECT run_id FROM import_runs WHERE game_slug = ? AND status IN ('QUEUED', 'RUNNING') LIMIT 1", [game], { $0.string(0) })
            {
                throw RPCError(.failedPrecondition, "an import of \(game) is already under way: \(pending) is still to merge")
            }
            // Uploads whose lease ran out (their receiver died) are over.
            try tx.execute(
                """
                UPDATE import_runs SET status = 'FAILED', error = 'abandoned: its import lock expired', finished_at = ?
                WHERE game_slug = ? AND status = 'RECEIVING'
                """, [now, game])
            try tx.execute(
                """
                INSERT INTO import_runs (run_id, game_slug, status, source, created_at, traceparent, correlation_id)
                VALUES (?, ?, 'RECEIVING', ?, ?, ?, ?)
                """, [runID, game, source, now, request.trace?.traceparent ?? "", request.correlationID ?? ""])
            return runID
        }
    }

    /// Stores one batch of the upload (with a progress report on the run's lock, if given);
    /// ABORTED, storing nothing, when the run was given up meanwhile (`keepReceiving`).
    func receive(runID: String, game: String, firstSeq: Int, _ entities: [Croupier_Staging_V1_EntityInput], progress: String? = nil) async throws {
        let locks = self.locks
        try await database.write { tx in
            try Self.keepReceiving(tx, runID: runID, game: game, locks: locks)
            if let progress { try locks.renew(tx, game: game, .importLock, holder: runID, progress: progress) }
            try tx.insertRows(
                into: "import_data", columns: ["run_id", "seq", "entity_type", "slug", "fields"],
                entities.enumerated().map { i, e in [runID, firstSeq + i, e.entityType, e.slug, FieldBlob.encode(e.fields)] })
            try tx.execute(
                "UPDATE import_runs SET entities_received = entities_received + ? WHERE run_id = ?", [entities.count, runID])
        }
    }

    /// The upload is complete: the run waits for a merge slot.
    /// Raised when a run is queued: wakes the importer, in whichever replica merges.
    var queued: ChangeSignal { database.signal("imports_queued") }

    /// The upload is complete: the run is QUEUED, in the transaction that
    /// checks it is still this upload's (`keepReceiving`), so a run is
    /// acknowledged only if it will be merged; otherwise ABORTED.
    func complete(runID: String, game: String) async throws {
        let (queued, locks) = (self.queued, self.locks)
        try await database.write { tx in
            try Self.keepReceiving(tx, runID: runID, game: game, locks: locks)
            try tx.execute("UPDATE import_runs SET status = 'QUEUED' WHERE run_id = ? AND status = 'RECEIVING'", [runID])
            tx.wake(queued)
        }
    }

    /// The upload may go on: the run is still RECEIVING, and it holds its
    /// game's import lock (renewed here; taken again if its lease ran out
    /// while nobody else took it, as under a stalled heartbeat). Otherwise
    /// ABORTED: the run was given up (its lease ran out and it was found
    /// orphaned, or another import of the game took over), and what the
    /// client sent must be sent again as a new import.
    private static func keepReceiving(_ tx: Transaction, runID: String, game: String, locks: LockStore) throws {
        let run = try tx.queryFirst("SELECT status, error FROM import_runs WHERE run_id = ?", [runID]) { ($0.string(0), $0.string(1)) }
        guard let run, run.0 == "RECEIVING" else {
            throw RPCError(.aborted, "import run \(runID) was given up (\(run?.1 ?? "it no longer exists")); send the import again")
        }
        guard try locks.acquire(tx, game: game, .importLock, holder: runID) else {
            throw RPCError(.aborted, "import run \(runID) lost the import lock of \(game) to another run; send the import again")
        }
    }

    /// The upload broke off (or the process died during it): no merge, no
    /// partial data; the run is FAILED and the lock released.
    func abandon(runID: String, reason: String) async throws {
        let (locks, clock) = (self.locks, self.clock)
        try await database.write { tx in try Self.fail(tx, runID: runID, reason: reason, now: clock.nowMillis(), locks: locks) }
    }

    /// Ends a run that has not ended: FAILED with `reason`, the upload's rows
    /// deleted, its lock released. The run's row is updated first: a
    /// concurrent `receive` either committed before (its rows are deleted
    /// here) or finds the run FAILED and stores nothing.
    private static func fail(_ tx: Transaction, runID: String, reason: String, now: Int64, locks: LockStore) throws {
        guard let game = try tx.queryFirst("SELECT game_slug FROM import_runs WHERE run_id = ?", [runID], { $0.string(0) })
        else { return }
        try tx.execute(
            "UPDATE import_runs SET status = 'FAILED', error = ?, finished_at = ? WHERE run_id = ? AND status IN ('RECEIVING', 'QUEUED', 'RUNNING')",
            [reason, now, runID])
        try tx.execute("DELETE FROM import_data WHERE run_id = ?", [runID])
        try locks.release(tx, game: game, .importLock, holder: runID)
    }

    public func run(_ runID: String) async throws -> Croupier_Staging_V1_ImportRun {
        try await database.read { db in
            guard let run = try db.queryFirst("SELECT \(Self.runColumns) FROM import_runs WHERE run_id = ?", [runID], Self.run) else {
                throw RPCError(.notFound, "import run \(runID) does not exist")
            }
            return run
        }
    }

    /// Fails the uploads whose receiver is gone: RECEIVING runs with no live
    /// import-lock lease of their own (a receiving replica renews it).
    @discardableResult
    func abandonOrphanedUploads() async throws -> Int {
        var abandoned = 0
        for run in try await orphanedUploads() where try await abandonIfOrphaned(run) { abandoned += 1 }
        return abandoned
    }

    /// RECEIVING runs with no live lease of their own, as read now.
    func orphanedUploads() async throws -> [String] {
        let now = clock.nowMillis()
        return try await database.read { db in try db.query(Self.orphanedSQL, [now], { $0.string(0) }) }
    }

    /// Fails `runID` if it is still an orphan, checked again in the
    /// transaction that fails it: between the read and this write its
    /// receiver may have renewed the lease, or completed the upload and
    /// been acknowledged (failing it then lost an acknowledged import).
    func abandonIfOrphaned(_ runID: String) async throws -> Bool {
        let (locks, clock) = (self.locks, self.clock)
        return try await database.write { tx in
            let now = clock.nowMillis()
            guard try tx.queryFirst(Self.orphanedSQL + " AND r.run_id = ?", [now, runID], { _ in true }) != nil else { return false }
            try Self.fail(tx, runID: runID, reason: "the upload was interrupted (its receiver stopped)", now: now, locks: locks)
            return true
        }
    }

    private static let orphanedSQL = """
        SELECT r.run_id FROM import_runs r
        LEFT JOIN locks l ON l.game_slug = r.game_slug AND l.kind = 'import' AND l.holder = r.run_id AND l.expires_at > ?
        WHERE r.status = 'RECEIVING' AND l.holder IS NULL
        """

    /// Runs by status, oldest first.
    func runs(status: String) async throws -> [(runID: String, game: String)] {
        try await database.read { db in
            try db.query(
                "SELECT run_id, game_slug FROM import_runs WHERE status = ? ORDER BY created_at", [status], { ($0.string(0), $0.string(1)) })
        }
    }

    // MARK: Merge

    /// Starts (or, after a crash, restarts) a run's merge: RUNNING, counters reset,
    /// the lock taken again by the run. False when the run lost its lock.
    func startMerge(runID: String, game: String) async throws -> Bool {
        let now = clock.nowMillis()
        let locks = self.locks
        return try await database.write { tx in
            // A run that ended meanwhile (abandoned when its lease ran out, failed, merged) never runs
            // again: its lock is not taken, and its status is not turned back to RUNNING.
            guard let status = try tx.queryFirst("SELECT status FROM import_runs WHERE run_id = ?", [runID], { $0.string(0) }),
                status == "QUEUED" || status == "RUNNING"
            else { return false }
            guard try locks.acquire(tx, game: game, .importLock, holder: runID) else {
                try tx.execute(
                    "UPDATE import_runs SET status = 'FAILED', error = 'another import took the lock', finished_at = ? WHERE run_id = ?",
                    [now, runID])
                return false
            }
            try tx.execute(
                "UPDATE import_runs SET status = 'RUNNING', started_at = ?, entities_merged = 0 WHERE run_id = ?", [now, runID])
            return true
        }
    }

    /// The overrides a merge has seen: by entity, and the highest sequence
    /// number read. Each page's transaction reads the ones committed since
    /// (`refresh`), so an override made at any moment of a merge wins: one
    /// committed before a page's transaction is in it, one committed after
    /// recomputes its entity from the imported fields that page wrote.
    struct OverrideSnapshot: Sendable {
        var byEntity: [String: [String: String]] = [:]
        var lastSeq: Int64 = -1

        mutating func refresh(_ db: SQLConnection, game: String) throws {
            for (type, slug, field, value, seq) in try db.query(
                "SELECT entity_type, slug, field, value, seq FROM overrides WHERE game_slug = ? AND seq > ?", [game, lastSeq],
                { ($0.string(0), $0.string(1), $0.string(2), $0.string(3), $0.int64(4)) })
            {
                byEntity[type + "/" + slug, default: [:]][field] = value
                lastSeq = max(lastSeq, seq)
            }
        }
    }

    /// One page of the upload after `afterSeq`.
    func importData(runID: String, afterSeq: Int, limit: Int) async throws -> [(seq: Int, type: String, slug: String, fields: [UInt8])] {
        try await database.read { db in
            try db.query(
                "SELECT seq, entity_type, slug, fields FROM import_data WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                [runID, afterSeq, limit], { ($0.int(0), $0.string(1), $0.string(2), $0.blob(3)) })
        }
    }

    /// Upserts one page into staging (imported fields; effective = imported
    /// overlaid by the entity's overrides, as committed when this page's
    /// transaction runs) in one transaction; returns the overrides seen.
    func mergePage(
        runID: String, game: String, _ page: [(seq: Int, type: String, slug: String, fields: [UInt8])],
        overrides seen: OverrideSnapshot, progress: String? = nil
    ) async throws -> OverrideSnapshot {
        let now = clock.nowMillis()
        let locks = self.locks
        return try await database.write { tx in
            if let progress { try locks.renew(tx, game: game, .importLock, holder: runID, progress: progress) }
            var overrides = seen
            try overrides.refresh(tx.connection, game: game)
            // One upsert statement may not touch a row twice: an entity sent twice in a page keeps its last copy.
            var last: [String: Int] = [:]
            for (i, row) in page.enumerated() { last[row.type + "/" + row.slug] = i }
            let rows: [[any SQLBindable]] = page.enumerated().compactMap { i, row in
                let key = row.type + "/" + row.slug
                guard last[key] == i else { return nil }
                var effective = row.fields
                if let o = overrides.byEntity[key] { effective = FieldBlob.encode(FieldBlob.decode(row.fields).merging(o) { $1 }) }
                return [game, row.type, row.slug, row.fields, effective, "import", 0, runID, now, FieldBlob.expansion(type: row.type, blob: effective)]
            }
            try tx.insertRows(
                into: "staging_entities",
                columns: ["game_slug", "entity_type", "slug", "imported_fields", "fields", "origin", "removed", "last_run_id", "updated_at", "expansion"],
                rows,
                conflict: """
                    ON CONFLICT (game_slug, entity_type, slug) DO UPDATE SET imported_fields = excluded.imported_fields,
                        fields = excluded.fields, removed = 0, last_run_id = excluded.last_run_id, updated_at = excluded.updated_at,
                        expansion = excluded.expansion
                    """)
            try tx.execute("UPDATE import_runs SET entities_merged = entities_merged + ? WHERE run_id = ?", [page.count, runID])
            return overrides
        }
    }

    /// Ends the merge in one transaction: imported entities missing from this
    /// snapshot are marked removed (manual ones never), the upload is dropped,
    /// the run SUCCEEDED and its lock released.
    func finishMerge(runID: String, game: String) async throws {
        let now = clock.nowMillis()
        let locks = self.locks
        try await database.write { tx in
            let removed = try tx.execute(
                """
                UPDATE staging_entities SET removed = 1, updated_at = ?
                WHERE game_slug = ? AND origin = 'import' AND removed = 0 AND last_run_id != ?
                """, [now, game, runID])
            try tx.execute("DELETE FROM import_data WHERE run_id = ?", [runID])
            try tx.execute(
                "UPDATE import_runs SET status = 'SUCCEEDED', entities_removed = ?, finished_at = ? WHERE run_id = ?",
                [removed, now, runID])
            try locks.release(tx, game: game, .importLock, holder: runID)
        }
    }

    /// SUCCEEDED runs whose diff request has not reached the DiffQueue yet.
    func runsOwingDiff() async throws -> [(runID: String, game: String, request: RequestContext)] {
        try await database.read { db in
            try db.query(
                """
                SELECT run_id, game_slug, correlation_id, traceparent FROM import_runs
                WHERE status = 'SUCCEEDED' AND diff_message_id = 0 ORDER BY created_at
                """, [], { ($0.string(0), $0.string(1), RequestContext(correlationID: $0.string(2), traceparent: $0.string(3))) })
        }
    }

    /// The call that uploaded `runID`: its correlation id and trace (empty: none kept, or no such run).
    func request(of runID: String) async throws -> RequestContext {
        try await database.read { db in
            try db.queryFirst("SELECT correlation_id, traceparent FROM import_runs WHERE run_id = ?", [runID]) {
                RequestContext(correlationID: $0.string(0), traceparent: $0.string(1))
            }
        } ?? RequestContext()
    }

    func recordDiffRequest(runID: String, messageID: Int64) async throws {
        try await database.write { tx in
            try tx.execute("UPDATE import_runs SET diff_message_id = ? WHERE run_id = ?", [messageID, runID])
        }
    }
}
