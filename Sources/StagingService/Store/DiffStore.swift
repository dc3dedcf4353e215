import Storage
import Wire

/// The latest diff of each game: entries, impact, trigger, timings. The only
/// writer of `diff-change` events, always in the transaction that stores
/// the diff.
public struct DiffStore: Sendable {
    let database: Database
    let events: StagingEvents
    let locks: LockStore
    let clock: any StorageClock

    /// Full diff: every staging entity against production, computed from one
    /// snapshot, stored (entries, impact, trigger, timing, the request marked
    /// done) in one transaction.
    /// `lockHolder`'s diff lock is released in the same transaction, so a
    /// client that sees the `diff-change` event finds the game unlocked.
    func storeFull(
        game: String, request: Croupier_Staging_V1_EnqueueDiffRequest, messageID: Int64, lockHolder: String,
        started: ContinuousClock.Instant
    ) async throws {
        let entries = try await database.read { db -> [EntityDiff] in
            let staging = try db.query(
                "SELECT entity_type, slug, fields, removed FROM staging_entities WHERE game_slug = ? ORDER BY entity_type, slug", [game],
                { ($0.string(0), $0.string(1), $0.blob(2), $0.bool(3)) })
            var production: [String: [UInt8]] = [:]
            for (t, s, f) in try db.query(
                "SELECT entity_type, slug, fields FROM production_entities WHERE game_slug = ?", [game], { ($0.string(0), $0.string(1), $0.blob(2)) })
            {
                production[t + "/" + s] = f
            }
            var out: [EntityDiff] = []
            for (t, s, f, removed) in staging {
                let key = t + "/" + s
                if let d = EntityDiff.compare(type: t, slug: s, production: production.removeValue(forKey: key), staging: removed ? nil : f) {
                    out.append(d)
                }
            }
            for (key, f) in production {
                let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                if let d = EntityDiff.compare(type: parts[0], slug: parts[1], production: f, staging: nil) { out.append(d) }
            }
            return out
        }
        let now = clock.nowMillis()
        let duration = Self.millis(since: started)
        let (events, locks) = (self.events, self.locks)
        try await database.write { tx in
            if try Self.alreadyDone(tx, messageID) { return }
            try tx.execute("DELETE FROM diff_entries WHERE game_slug = ?", [game])
            try Self.insert(tx, game: game, entries)
            try Self.finish(
                tx, game: game, request: request, messageID: messageID, now: now, duration: duration,
                impact: try Self.impact(tx.connection, game: game), events: events)
            try locks.release(tx, game: game, .diff, holder: lockHolder)
        }
    }

    /// Fast path for a MANUAL request naming one entity: only that entity's
    /// entry is recomputed and patched into the stored diff, and only the
    /// expansions it can have touched are recounted in the stored impact
    /// (its production expansion, the one its previous entry had in staging,
    /// and its staging expansion now), each an indexed count.
    func patchEntity(
        game: String, type: String, slug: String, request: Croupier_Staging_V1_EnqueueDiffRequest, messageID: Int64,
        lockHolder: String, started: ContinuousClock.Instant
    ) async throws {
        let now = clock.nowMillis()
        let (events, locks) = (self.events, self.locks)
        try await database.write { tx in
            if try Self.alreadyDone(tx, messageID) { return }
            let staging = try tx.queryFirst(
                "SELECT fields, removed FROM staging_entities WHERE game_slug = ? AND entity_type = ? AND slug = ?", [game, type, slug],
                { ($0.blob(0), $0.bool(1)) })
            let production = try tx.queryFirst(
                "SELECT fields FROM production_entities WHERE game_slug = ? AND entity_type = ? AND slug = ?", [game, type, slug],
                { $0.blob(0) })
            var touched: Set<String> = []
            if type == "card" {
                if let previous = try tx.queryFirst(
                    "SELECT fields FROM diff_entries WHERE game_slug = ? AND entity_type = ? AND slug = ?", [game, type, slug],
                    { try Croupier_Staging_V1_DiffEntry(serializedBytes: $0.blob(0)) }),
                    let e = previous.fields.first(where: { $0.field == "expansion" })
                {
                    touched.insert(e.newValue)
                }
                if let p = production { touched.insert(FieldBlob.expansion(type: type, blob: p)) }
                if let s = staging { touched.insert(FieldBlob.expansion(type: type, blob: s.0)) }
            }
            try tx.execute("DELETE FROM diff_entries WHERE game_slug = ? AND entity_type = ? AND slug = ?", [game, type, slug])
            if let d = EntityDiff.compare(type: type, slug: slug, production: production, staging: staging.flatMap { $0.1 ? nil : $0.0 }) {
                try Self.insert(tx, game: game, [d])
            }
            let impact = try Self.patchedImpact(tx.connection, game: game, touched: touched)
            try Self.finish(
                tx, game: game, request: request, messageID: messageID, now: now, duration: Self.millis(since: started),
                impact: impact, events: events)
            try locks.release(tx, game: game, .diff, holder: lockHolder)
        }
    }

    /// After a deploy: staging and production agree, so the diff is empty.
    func storeEmpty(_ tx: Transaction, game: String, now: Int64) throws {
        try tx.execute("DELETE FROM diff_entries WHERE game_slug = ?", [game])
        try Self.finish(
            tx, game: game, request: .with { $0.trigger = .manual }, messageID: nil, now: now, duration: 0,
            impact: try Self.impact(tx.connection, game: game), events: events)
    }

    static func millis(since start: ContinuousClock.Instant) -> Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    static func alreadyDone(_ tx: Transaction, _ messageID: Int64) throws -> Bool {
        try tx.queryFirst("SELECT 1 FROM diff_requests_done WHERE message_id = ?", [messageID], { _ in true }) != nil
    }

    static func insert(_ tx: Transaction, game: String, _ entries: [EntityDiff]) throws {
        try tx.insertRows(
            into: "diff_entries", columns: ["game_slug", "entity_type", "slug", "change", "fields"],
            entries.map { [game, $0.type, $0.slug, $0.change.rawValue, $0.encodedFields] })
    }

    /// Impact, the diff row, the request marked done and the `diff-change` event.
    static func finish(
        _ tx: Transaction, game: String, request: Croupier_Staging_V1_EnqueueDiffRequest, messageID: Int64?, now: Int64,
        duration: Int64, impact: [Croupier_Staging_V1_ExpansionImpact], events: StagingEvents
    ) throws {
        try tx.execute(
            """
            INSERT INTO diffs (game_slug, trigger, import_run_id, generated_at, duration_ms, impact) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (game_slug) DO UPDATE SET trigger = excluded.trigger, import_run_id = excluded.import_run_id,
                generated_at = excluded.generated_at, duration_ms = excluded.duration_ms, impact = excluded.impact
            """,
            [game, request.trigger == .import ? "IMPORT" : "MANUAL", request.importRunId, now, duration,
             Croupier_Staging_V1_Diff.with { $0.impact = impact }.serializedBytes()])
        if let messageID { try tx.execute("INSERT INTO diff_requests_done (message_id, done_at) VALUES (?, ?)", [messageID, now]) }
        let counts = try Self.counts(tx.connection, game: game)
        try events.append(tx, game: game, .diffChange, [
            "trigger": request.trigger == .import ? "IMPORT" : "MANUAL",
            "added": String(counts.reduce(0) { $0 + $1.added }), "changed": String(counts.reduce(0) { $0 + $1.changed }),
            "removed": String(counts.reduce(0) { $0 + $1.removed }),
            "entity": request.entitySlug.isEmpty ? "" : request.entityType + "/" + request.entitySlug,
            "message_id": messageID.map(String.init) ?? "", "import_run_id": request.importRunId,
        ])
    }

    /// Cards per expansion in production (before) and in staging (after, removed ones excluded).
    static func impact(_ db: SQLConnection, game: String) throws -> [Croupier_Staging_V1_ExpansionImpact] {
        var rows: [String: (Int64, Int64)] = [:]
        for (e, n) in try db.query(
            "SELECT expansion, count(*) FROM production_entities WHERE game_slug = ? AND entity_type = 'card' GROUP BY expansion",
            [game], { ($0.string(0), $0.int64(1)) })
        {
            rows[e, default: (0, 0)].0 = n
        }
        for (e, n) in try db.query(
            """
            SELECT expansion, count(*) FROM staging_entities WHERE game_slug = ? AND entity_type = 'card' AND removed = 0
            GROUP BY expansion
            """, [game], { ($0.string(0), $0.int64(1)) })
        {
            rows[e, default: (0, 0)].1 = n
        }
        return rows.keys.sorted().map { e in
            .with {
                $0.expansion = e
                $0.cardsBefore = rows[e]!.0
                $0.cardsAfter = rows[e]!.1
            }
        }
    }

    /// The stored impact with the `touched` expansions recounted.
    static func patchedImpact(_ db: SQLConnection, game: String, touched: Set<String>) throws -> [Croupier_Staging_V1_ExpansionImpact] {
        guard let stored = try db.queryFirst("SELECT impact FROM diffs WHERE game_slug = ?", [game], { $0.blob(0) }) else {
            return try impact(db, game: game)
        }
        var rows: [String: Croupier_Staging_V1_ExpansionImpact] = [:]
        for i in (try? Croupier_Staging_V1_Diff(serializedBytes: stored).impact) ?? [] { rows[i.expansion] = i }
        for e in touched {
            let before = try db.queryFirst(
                "SELECT count(*) FROM production_entities WHERE game_slug = ? AND entity_type = 'card' AND expansion = ?", [game, e],
                { $0.int64(0) }) ?? 0
            let after = try db.queryFirst(
                "SELECT count(*) FROM staging_entities WHERE game_slug = ? AND entity_type = 'card' AND expansion = ? AND removed = 0",
                [game, e], { $0.int64(0) }) ?? 0
            if before == 0 && after == 0 {
                rows[e] = nil
            } else {
                rows[e] = .with {
                    $0.expansion = e
                    $0.cardsBefore = before
                    $0.cardsAfter = after
                }
            }
        }
        return rows.keys.sorted().map { rows[$0]! }
    }

    static func counts(_ db: SQLConnection, game: String) throws -> [Croupier_Staging_V1_TypeCounts] {
        var byType: [String: Croupier_Staging_V1_TypeCounts] = [:]
        for (t, c, n) in try db.query(
            "SELECT entity_type, change, count(*) FROM diff_entries WHERE game_slug = ? GROUP BY entity_type, change", [game],
            { ($0.string(0), $0.string(1), $0.int64(2)) })
        {
            var row = byType[t] ?? .with { $0.entityType = t }
            switch c {
            case "ADDED": row.added = n
            case "CHANGED": row.changed = n
            default: row.removed = n
            }
            byType[t] = row
        }
        return byType.keys.sorted().map { byType[$0]! }
    }

    /// The stored diff of a game with one page of entries after `after` (type, slug).
    public func diff(game: String, after: (String, String), limit: Int) async throws -> Croupier_Staging_V1_Diff {
        try await database.read { db in
            guard var diff = try db.queryFirst(
                "SELECT trigger, import_run_id, generated_at, duration_ms, impact FROM diffs WHERE game_slug = ?", [game], { r in
                    var d = (try? Croupier_Staging_V1_Diff(serializedBytes: r.blob(4))) ?? .init()
                    d.trigger = r.string(0) == "IMPORT" ? .import : .manual
                    d.importRunId = r.string(1)
                    d.generatedAtMs = r.int64(2)
                    d.durationMs = r.int64(3)
                    return d
                })
            else { throw RPCError(.notFound, "no diff has been generated for \(game) yet") }
            diff.gameSlug = game
            diff.counts = try Self.counts(db, game: game)
            diff.empty = diff.counts.allSatisfy { $0.added == 0 && $0.changed == 0 && $0.removed == 0 }
            let entries = try db.query(
                """
                SELECT entity_type, slug, change, fields FROM diff_entries
                WHERE game_slug = ? AND (entity_type, slug) > (?, ?) ORDER BY entity_type, slug LIMIT ?
                """, [game, after.0, after.1, limit + 1]
            ) { r -> Croupier_Staging_V1_DiffEntry in
                var e = (try? Croupier_Staging_V1_DiffEntry(serializedBytes: r.blob(3))) ?? .init()
                e.entityType = r.string(0)
                e.slug = r.string(1)
                e.change = r.string(2) == "ADDED" ? .added : r.string(2) == "CHANGED" ? .changed : .removed
                return e
            }
            diff.entries = Array(entries.prefix(limit))
            if entries.count > limit, let last = diff.entries.last { diff.nextPageToken = PageToken.encode(last.entityType, last.slug) }
            return diff
        }
    }
}

/// Page tokens over (entity type, slug): "type/slug".
enum PageToken {
    static func encode(_ type: String, _ slug: String) -> String { type + "/" + slug }

    static func decode(_ token: String) throws -> (String, String) {
        if token.isEmpty { return ("", "") }
        let parts = token.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { throw RPCError(.invalidArgument, "page_token '\(token.prefix(100))' is not one this service issued") }
        return (parts[0], parts[1])
    }
}
