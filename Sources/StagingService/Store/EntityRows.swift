import Storage
import Wire

/// A staging entity as read.
public struct StagingEntity: Sendable, Equatable {
    public var game: String
    public var type: String
    public var slug: String
    public var imported: [String: String]
    public var fields: [String: String]
    public var overrides: [String: String]
    public var origin: String
    public var removed: Bool
    public var updatedAtMillis: Int64

    var proto: Croupier_Staging_V1_Entity {
        .with {
            $0.gameSlug = game
            $0.entityType = type
            $0.slug = slug
            $0.fields = fields
            $0.importedFields = imported
            $0.overrides = overrides
            $0.origin = origin
            $0.removed = removed
            $0.updatedAtMs = updatedAtMillis
        }
    }
}

/// Reading staging entities.
enum EntityRows {
    static func entity(_ db: SQLConnection, game: String, type: String, slug: String) throws -> StagingEntity? {
        guard var e = try db.queryFirst(
            """
            SELECT imported_fields, fields, origin, removed, updated_at FROM staging_entities
            WHERE game_slug = ? AND entity_type = ? AND slug = ?
            """, [game, type, slug], { r in
                StagingEntity(
                    game: game, type: type, slug: slug, imported: FieldBlob.decode(r.blob(0)), fields: FieldBlob.decode(r.blob(1)),
                    overrides: [:], origin: r.string(2), removed: r.bool(3), updatedAtMillis: r.int64(4))
            })
        else { return nil }
        e.overrides = try overrides(db, game: game, type: type, slug: slug)
        return e
    }

    static func overrides(_ db: SQLConnection, game: String, type: String, slug: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in try db.query(
            "SELECT field, value FROM overrides WHERE game_slug = ? AND entity_type = ? AND slug = ?", [game, type, slug],
            { ($0.string(0), $0.string(1)) })
        {
            out[k] = v
        }
        return out
    }

    /// A page of entities after (type, slug), in that order.
    static func page(
        _ db: SQLConnection, game: String, type: String?, after: (String, String), limit: Int, includeRemoved: Bool
    ) throws -> [StagingEntity] {
        let rows = try db.query(
            """
            SELECT entity_type, slug FROM staging_entities
            WHERE game_slug = ? AND (entity_type, slug) > (?, ?) AND (? IS NULL OR entity_type = ?) AND (? = 1 OR removed = 0)
            ORDER BY entity_type, slug LIMIT ?
            """, [game, after.0, after.1, type, type, includeRemoved ? 1 : 0, limit], { ($0.string(0), $0.string(1)) })
        return try rows.compactMap { try entity(db, game: game, type: $0.0, slug: $0.1) }
    }

    /// Game slugs after `after`, in order, at most `limit`: every game with
    /// entities or import runs. Each table is read by a loose index scan (one
    /// index probe per game, not a pass over every entity).
    static func games(_ db: SQLConnection, after: String, limit: Int) throws -> [String] {
        let entities = try db.query(gameSlugsSQL("staging_entities"), [after, limit]) { $0.string(0) }
        let runs = try db.query(gameSlugsSQL("import_runs"), [after, limit]) { $0.string(0) }
        return Array(Set(entities + runs).sorted().prefix(limit))
    }

    /// The distinct game slugs of `table` after `?`, at most `?`: each the
    /// smallest slug above the last, found through the index that leads with
    /// `game_slug` (parameters: after, limit).
    static func gameSlugsSQL(_ table: String) -> String {
        """
        WITH RECURSIVE g(slug) AS (
            SELECT (SELECT min(game_slug) FROM \(table) WHERE game_slug > ?)
            UNION ALL
            SELECT (SELECT min(game_slug) FROM \(table) WHERE game_slug > g.slug) FROM g WHERE g.slug IS NOT NULL
        )
        SELECT slug FROM g WHERE slug IS NOT NULL LIMIT ?
        """
    }

    static func gameExists(_ db: SQLConnection, _ game: String) throws -> Bool {
        try db.queryFirst("SELECT 1 FROM staging_entities WHERE game_slug = ? LIMIT 1", [game], { _ in true }) != nil
            || db.queryFirst("SELECT 1 FROM import_runs WHERE game_slug = ? LIMIT 1", [game], { _ in true }) != nil
    }
}
