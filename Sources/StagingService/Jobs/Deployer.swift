import Foundation
import Storage
import Wire

/// Applies a game's staging to production in pages, reporting progress as
/// `deploy-status` events (this is their only writer), each in the
/// transaction of the page it reports. It holds the game's import and diff
/// locks throughout, so no merge or diff changes staging under it (and it
/// refuses while either is taken). The last transaction removes what staging
/// no longer has, stores the now empty diff and releases both locks.
struct Deployer: Sendable {
    let database: Database
    let locks: LockStore
    let leases: LeaseKeeper
    let diffs: DiffStore
    let events: StagingEvents
    let clock: any StorageClock
    let pageSize = 2_000

    func deploy(game: String) async throws -> (upserted: Int, deleted: Int) {
        let holder = "deploy-" + UUID().uuidString.lowercased()
        let (locks, events) = (self.locks, self.events)
        let total = try await database.write { tx -> Int in
            guard try EntityRows.gameExists(tx.connection, game) else { throw RPCError(.notFound, "game \(game) has nothing in staging") }
            guard try locks.acquire(tx, game: game, .importLock, holder: holder) else {
                let run = try locks.holder(tx, game: game, .importLock) ?? "an import"
                throw RPCError(.failedPrecondition, "import \(run) of \(game) is under way; deploy after it finishes")
            }
            guard try locks.acquire(tx, game: game, .diff, holder: holder) else {
                throw RPCError(.failedPrecondition, "a diff of \(game) is being generated; deploy after it finishes")
            }
            let total = try tx.queryFirst(
                "SELECT count(*) FROM staging_entities WHERE game_slug = ? AND removed = 0", [game], { $0.int(0) }) ?? 0
            try events.append(tx, game: game, .deployStatus, ["state": "started", "done": "0", "total": String(total)])
            return total
        }
        let held = [LeaseKeeper.Held(game: game, kind: .diff, holder: holder), .init(game: game, kind: .importLock, holder: holder)]
        held.forEach(leases.hold)
        defer { held.forEach(leases.drop) }
        do {
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
                guard let last = page.last else { break }
                done += page.count
                let progress = done
                try await database.write { tx in
                    for (t, s, f, e) in page {
                        try tx.execute(
                            """
                            INSERT INTO production_entities (game_slug, entity_type, slug, fields, expansion) VALUES (?, ?, ?, ?, ?)
                            ON CONFLICT (game_slug, entity_type, slug) DO UPDATE SET fields = excluded.fields, expansion = excluded.expansion
                            """, [game, t, s, f, e])
                    }
                    try events.append(tx, game: game, .deployStatus, ["state": "running", "done": String(progress), "total": String(total)])
                }
                after = (last.0, last.1)
            }
            let now = clock.nowMillis()
            let diffs = self.diffs
            let upserted = done
            let deleted = try await database.write { tx -> Int in
                let deleted = try tx.execute(
                    """
                    DELETE FROM production_entities WHERE game_slug = ?1 AND NOT EXISTS (
                        SELECT 1 FROM staging_entities s WHERE s.game_slug = ?1 AND s.entity_type = production_entities.entity_type
                            AND s.slug = production_entities.slug AND s.removed = 0)
                    """, [game])
                try diffs.storeEmpty(tx, game: game, now: now)
                try events.append(tx, game: game, .deployStatus, [
                    "state": "succeeded", "done": String(upserted), "total": String(total), "deleted": String(deleted),
                ])
                try locks.release(tx, game: game, .diff, holder: holder)
                try locks.release(tx, game: game, .importLock, holder: holder)
                return deleted
            }
            return (done, deleted)
        } catch {
            try? await database.write { tx in
                try events.append(tx, game: game, .deployStatus, ["state": "failed", "error": "\(error)"])
                try locks.release(tx, game: game, .diff, holder: holder)
                try locks.release(tx, game: game, .importLock, holder: holder)
            }
            throw error
        }
    }
}
