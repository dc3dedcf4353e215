import Foundation
import Storage
import Wire

/// Manual mutations of staging: overrides, manually created entities, images.
///
/// Each call is one transaction that makes every mutation of the call, then
/// writes its `entity-change` event (this is that event's only writer) and a
/// MANUAL diff request into the queue. Publishing happens only once all of
/// the call's mutations are in place, and a crash can never leave the
/// mutation without its event and diff request, or the other way round.
public struct ManualChanges: Sendable {
    let database: Database
    let events: StagingEvents
    let requests: DiffRequests
    let clock: any StorageClock

    /// Overrides fields of an existing entity; the overrides also win over any later import.
    public func override(game: String, type: String, slug: String, fields: [String: String]) async throws -> StagingEntity {
        let (now, origin) = (clock.nowMillis(), DiffRequests.origin)
        return try await database.write { tx in
            guard let entity = try EntityRows.entity(tx.connection, game: game, type: type, slug: slug) else {
                throw RPCError(.notFound, "\(type) \(slug) does not exist in \(game)")
            }
            let seq = try Self.nextOverrideSeq(tx, game: game)
            for (field, value) in fields {
                try tx.execute(
                    """
                    INSERT INTO overrides (game_slug, entity_type, slug, field, value, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (game_slug, entity_type, slug, field) DO UPDATE SET value = excluded.value, created_at = excluded.created_at,
                        seq = excluded.seq
                    """, [game, type, slug, field, value, now, seq])
            }
            let effective = entity.imported.merging(try EntityRows.overrides(tx.connection, game: game, type: type, slug: slug)) { $1 }
            try tx.execute(
                """
                UPDATE staging_entities SET fields = ?, updated_at = ?, expansion = ?
                WHERE game_slug = ? AND entity_type = ? AND slug = ?
                """, [FieldBlob.encode(effective), now, FieldBlob.expansion(type: type, fields: effective), game, type, slug])
            try publish(tx, game: game, type: type, slug: slug, change: "updated", origin: origin)
            return try EntityRows.entity(tx.connection, game: game, type: type, slug: slug)!
        }
    }

    /// Creates an entity by hand: origin `manual` (an import never removes it),
    /// all its fields kept as overrides.
    public func create(game: String, _ e: Croupier_Staging_V1_EntityInput) async throws -> StagingEntity {
        let (now, origin) = (clock.nowMillis(), DiffRequests.origin)
        return try await database.write { tx in
            if try EntityRows.entity(tx.connection, game: game, type: e.entityType, slug: e.slug) != nil {
                throw RPCError(.alreadyExists, "\(e.entityType) \(e.slug) already exists in \(game); override its fields instead")
            }
            let seq = try Self.nextOverrideSeq(tx, game: game)
            for (field, value) in e.fields {
                try tx.execute(
                    "INSERT INTO overrides (game_slug, entity_type, slug, field, value, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [game, e.entityType, e.slug, field, value, now, seq])
            }
            try tx.execute(
                """
                INSERT INTO staging_entities (game_slug, entity_type, slug, imported_fields, fields, origin, removed, updated_at, expansion)
                VALUES (?, ?, ?, ?, ?, 'manual', 0, ?, ?)
                """, [game, e.entityType, e.slug, FieldBlob.encode([:]), FieldBlob.encode(e.fields), now,
                      FieldBlob.expansion(type: e.entityType, fields: e.fields)])
            try publish(tx, game: game, type: e.entityType, slug: e.slug, change: "created", origin: origin)
            return try EntityRows.entity(tx.connection, game: game, type: e.entityType, slug: e.slug)!
        }
    }

    /// Stores an image (content-addressed) and overrides the entity's `image` field with its reference.
    public func uploadImage(game: String, type: String, slug: String, contentType: String, data: [UInt8]) async throws -> StagingEntity {
        let digest = sha256Hex(data)
        let now = clock.nowMillis()
        try await database.write { tx in
            try tx.execute(
                "INSERT OR IGNORE INTO images (sha256, content_type, data, created_at) VALUES (?, ?, ?, ?)",
                [digest, contentType, data, now])
        }
        return try await override(game: game, type: type, slug: slug, fields: ["image": "image:sha256:\(digest)"])
    }

    /// The game's next override sequence number: a merge in progress reads
    /// the overrides above the last one it saw in each page's transaction.
    static func nextOverrideSeq(_ tx: Transaction, game: String) throws -> Int64 {
        try tx.queryFirst("SELECT coalesce(max(seq), 0) + 1 FROM overrides WHERE game_slug = ?", [game], { $0.int64(0) }) ?? 1
    }

    /// The change's event, and its diff request (with the call that made the change as its origin).
    private func publish(_ tx: Transaction, game: String, type: String, slug: String, change: String, origin: MessageOrigin) throws {
        let offset = try events.append(tx, game: game, .entityChange, [
            "entity_type": type, "slug": slug, "change": change, "source": "manual",
        ])
        try requests.send(tx, .with {
            $0.gameSlug = game
            $0.trigger = .manual
            $0.entityType = type
            $0.entitySlug = slug
            $0.changeId = String(offset)
        }, origin: origin)
    }
}
