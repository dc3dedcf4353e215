import Foundation
import Storage
import Wire

/// Applies a game's staging to production, all or nothing.
///
/// A deploy copies staging in pages into `production_pending` (its own rows,
/// keyed by deploy id), reporting progress as `deploy-status` events (this is
/// their only writer), each in the transaction of the page it reports. Then
/// one transaction swaps: it re-copies the entities changed since the deploy
/// began (overrides made meanwhile), replaces the game's production rows with
/// the pending copy, stores the now empty diff, emits `succeeded` and
/// releases the locks. Production is therefore always entirely the old or
/// entirely the new content. A deploy that fails, or whose process died
/// (`recoverInterrupted`, at start), drops its pending rows and ends with one
/// `failed` event; production was never touched. Every deploy has exactly one
/// terminal event.
///
/// It holds the game's import and diff locks throughout (and refuses while
/// either is taken), so no merge or diff changes staging under it.
struct Deployer: Sendable {
    let database: Database
    let locks: LockStore
    let leases: LeaseKeeper
    let diffs: DiffStore
    let events: StagingEvents
    let clock: any StorageClock
    /// Deploys that reached production, timed from their start.
    var swapped = DurationHistogram()
    let pageSize = 2_000

    func deploy(game: String) async throws -> (upserted: Int, deleted: Int) {
        let id = "deploy-" + UUID().uuidString.lowercased()
        let startedAt = clock.nowMillis()
        let (locks, events) = (self.locks, self.events)
        let total = try await database.write { tx -> Int in
            guard try EntityRows.gameExists(tx.connection, game) else { throw RPCError(.notFound, "game \(game) has nothing in staging") }
            guard try locks.acquire(tx, game: game, .importLock, holder: id) else {
                let run = try locks.holder(tx, game: game, .importLock) ?? "an import"
                throw RPCError(.failedPrecondition, "import \(run) of \(game) is under way; deploy after it finishes")
            }
            guard try locks.acquire(tx, game: game, .diff, holder: id) else {
                throw RPCError(.failedPrecondition, "a diff of \(game) is being generated; deploy after it finishes")
            }
            let total = try tx.queryFirst(
                "SELECT count(*) FROM staging_entities WHERE game_slug = ? AND removed = 0", [game], { $0.int(0) }) ?? 0
            try tx.execute(
                "INSERT INTO deploys (deploy_id, game_slug, state, started_at, total) VALUES (?, ?, 'RUNNING', ?, ?)",
                [id, game, startedAt, total])
            try events.append(tx, game: game, .deployStatus, ["deploy_id": id, "state": "started", "done": "0", "total": String(total)])
            return total
        }
        let held = [LeaseKeeper.Held(game: game, kind: .diff, holder: id), .init(game: game, kind: .importLock, holder: id)]
        held.forEach(leases.hold)
        defer { held.forEach(leases.drop) }
        do {
            let began = ContinuousClock.now
            let copied = try await copyToPending(id: id, game: game, total: total)
            let done = try await swap(id: id, game: game, startedAt: startedAt, copied: copied, total: total)
            swapped.observe(since: began)
            return done
        } catch {
            try? await database.write { tx in try Self.fail(tx, locks: locks, events: events, id: id, game: game, error: "\(error)", now: clock.nowMillis()) }
            throw error
        }
    }

    /// Staging, page by page, into the deploy's pending rows; one progress event per page.
    private func copyToPending(id: String, game: String, total: Int) async throws -> Int {
        let events = self.events
        var after = ("", "")
        var done = 0
        while true {
            let cursor = after
            let page = try await database.read { db in
                try db.query(
                    """
                    SELECT entity_type, slug, fields, expansion FROM staging_entities
                    WHERE game_slug = ? AND removed = 0 AND (entity_type, slug) > (?, ?) ORDER BY entity_type, slug LIMIT ?
                    """, [game, cursor.0, cursor.1, pageSize], { ($0.string(0), $0.string(1), $0.blob(2), $0.string(3)) })
            }
            guard let last = page.last else { return done }
            done += page.count
            let progress = done
            try await database.write { tx in
                try tx.insertRows(
                    into: "production_pending", columns: ["deploy_id", "entity_type", "slug", "fields", "expansion"],
                    page.map { t, s, f, e in [id, t, s, f, e] },
                    conflict: "ON CONFLICT (deploy_id, entity_type, slug) DO UPDATE SET fields = excluded.fields, expansion = excluded.expansion")
                try tx.execute("UPDATE deploys SET copied = ? WHERE deploy_id = ?", [progress, id])
                try events.append(tx, game: game, .deployStatus, [
                    "deploy_id": id, "state": "running", "done": String(progress), "total": String(total),
                ])
            }
            after = (last.0, last.1)
        }
    }

    /// The one transaction that makes the deploy visible.
    private func swap(id: String, game: String, startedAt: Int64, copied: Int, total: Int) async throws -> (upserted: Int, deleted: Int) {
        let (locks, events, diffs) = (self.locks, self.events, self.diffs)
        let now = clock.nowMillis()
        return try await database.write { tx in
            // Entities changed since the copy began (overrides and manual entities made during the deploy).
            try tx.execute(
                """
                INSERT INTO production_pending (deploy_id, entity_type, slug, fields, expansion)
                SELECT ?, entity_type, slug, fields, expansion FROM staging_entities WHERE game_slug = ? AND removed = 0 AND updated_at >= ?
                ON CONFLICT (deploy_id, entity_type, slug) DO UPDATE SET fields = excluded.fields, expansion = excluded.expansion
                """, [id, game, startedAt])
            let deleted = try tx.queryFirst(
                """
                SELECT count(*) FROM production_entities p WHERE p.game_slug = ? AND NOT EXISTS (
                    SELECT 1 FROM production_pending q WHERE q.deploy_id = ? AND q.entity_type = p.entity_type AND q.slug = p.slug)
                """, [game, id], { $0.int(0) }) ?? 0
            try tx.execute("DELETE FROM production_entities WHERE game_slug = ?", [game])
            let upserted = try tx.execute(
                """
                INSERT INTO production_entities (game_slug, entity_type, slug, fields, expansion)
                SELECT ?, entity_type, slug, fields, expansion FROM production_pending WHERE deploy_id = ?
                """, [game, id])
            try tx.execute("DELETE FROM production_pending WHERE deploy_id = ?", [id])
            try diffs.storeEmpty(tx, game: game, now: now)
            try tx.execute("UPDATE deploys SET state = 'SUCCEEDED', finished_at = ?, copied = ? WHERE deploy_id = ?", [now, upserted, id])
            try events.append(tx, game: game, .deployStatus, [
                "deploy_id": id, "state": "succeeded", "done": String(upserted), "total": String(max(total, upserted)),
                "deleted": String(deleted),
            ])
            try locks.release(tx, game: game, .diff, holder: id)
            try locks.release(tx, game: game, .importLock, holder: id)
            return (upserted, deleted)
        }
    }

    /// Ends a deploy that cannot finish: its pending rows dropped, FAILED, one
    /// `failed` event, its locks released. Production was never touched.
    private static func fail(
        _ tx: Transaction, locks: LockStore, events: StagingEvents, id: String, game: String, error: String, now: Int64
    ) throws {
        guard try tx.execute(
            "UPDATE deploys SET state = 'FAILED', finished_at = ?, error = ? WHERE deploy_id = ? AND state = 'RUNNING'", [now, error, id]) == 1
        else { return }  // already ended: one terminal event only
        try tx.execute("DELETE FROM production_pending WHERE deploy_id = ?", [id])
        try events.append(tx, game: game, .deployStatus, ["deploy_id": id, "state": "failed", "error": error])
        try locks.release(tx, game: game, .diff, holder: id)
        try locks.release(tx, game: game, .importLock, holder: id)
    }

    /// At start: deploys a previous process left RUNNING end FAILED (production
    /// is unchanged: the swap is one transaction it never reached).
    ///
    /// `onlyOrphaned`: only deploys whose holder is gone (its import-lock lease
    /// ran out or was removed), as replicas sharing a database need: a
    /// deploy another live process runs keeps its lease renewed.
    func recoverInterrupted(onlyOrphaned: Bool = false) async throws -> Int {
        let (locks, events) = (self.locks, self.events)
        let now = clock.nowMillis()
        if onlyOrphaned {
            // Reads first: no write transaction when nothing is orphaned (the usual case).
            let any = try await database.read { db in try Self.orphans(db, now: now) }
            if any.isEmpty { return 0 }
        }
        return try await database.write { tx in
            let running = onlyOrphaned ? try Self.orphans(tx.connection, now: now)
                : try tx.query("SELECT deploy_id, game_slug FROM deploys WHERE state = 'RUNNING'", [], { ($0.string(0), $0.string(1)) })
            for (id, game) in running {
                try Self.fail(tx, locks: locks, events: events, id: id, game: game,
                    error: "interrupted: the staging service stopped during the deploy; production is unchanged", now: now)
            }
            return running.count
        }
    }

    /// RUNNING deploys with no live import-lock lease of their own.
    static func orphans(_ db: SQLConnection, now: Int64) throws -> [(String, String)] {
        try db.query(
            """
            SELECT d.deploy_id, d.game_slug FROM deploys d
            LEFT JOIN locks l ON l.game_slug = d.game_slug AND l.kind = 'import' AND l.holder = d.deploy_id AND l.expires_at > ?
            WHERE d.state = 'RUNNING' AND l.holder IS NULL
            """, [now], { ($0.string(0), $0.string(1)) })
    }
}
