import Foundation

/// Identity checks and migrations on PostgreSQL, as `SchemaManager` does on
/// SQLite. Replicas starting together take an advisory lock, so one applies
/// each migration and the others find it applied.
enum PGSchemaManager {
    /// The advisory lock key of Croupier's migrations ("CRPR").
    static let lockKey: Int64 = 0x4352_5052

    static func prepare(_ db: PGConnection, location: String, owner: String, migrations: [Migration]) throws {
        try db.executeScript("SELECT pg_advisory_lock(\(lockKey))")
        defer { try? db.executeScript("SELECT pg_advisory_unlock(\(lockKey))") }
        let ours = try db.queryFirst("SELECT to_regclass('croupier_meta') IS NOT NULL", []) { $0.bool(0) } ?? false
        if !ours {
            let tables = try db.queryFirst(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()", []) { $0.int(0) } ?? 0
            guard tables == 0 else {
                throw StorageError.notACroupierDatabase(path: location, reason: "it has \(tables) tables but no croupier_meta")
            }
            try db.executeScript("""
                BEGIN;
                CREATE TABLE croupier_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE croupier_migrations (
                    component TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL, PRIMARY KEY (component, version));
                COMMIT;
                """)
            try db.execute("INSERT INTO croupier_meta (key, value) VALUES ($1, $2)", ["owner", owner])
        }
        let found = try db.queryFirst("SELECT value FROM croupier_meta WHERE key = 'owner'", []) { $0.string(0) } ?? ""
        guard found == owner else { throw StorageError.wrongOwner(path: location, expected: owner, found: found) }

        let applied = try db.query("SELECT component, max(version) FROM croupier_migrations GROUP BY component", []) {
            ($0.string(0), $0.int(1))
        }
        for m in try SchemaManager.pending(migrations, applied: applied) {
            try db.executeScript("BEGIN")
            do {
                try db.executeScript(Dialect.postgres.translate(m.sql, schema: true))
                try db.execute(
                    "INSERT INTO croupier_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)",
                    [m.component, m.version, m.name, SystemClock().nowMillis()])
                try db.executeScript("COMMIT")
            } catch {
                try? db.executeScript("ROLLBACK")
                throw error
            }
        }
    }
}
