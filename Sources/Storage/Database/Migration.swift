/// One numbered schema step of one component (a service's store, the queue,
/// the event log …). Applied in version order, once, and recorded in the
/// database with the time it ran.
public struct Migration: Sendable {
    public let component: String
    public let version: Int
    public let name: String
    public let sql: String

    public init(_ component: String, _ version: Int, _ name: String, _ sql: String) {
        self.component = component
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Identity checks and migration bookkeeping, run once when a database opens.
enum SchemaManager {
    /// `PRAGMA application_id` of every Croupier database: "CRPR".
    static let applicationID: Int64 = 0x4352_5052

    static func prepare(_ db: SQLiteConnection, path: String, owner: String, migrations: [Migration]) throws {
        let appID = try db.queryFirst("PRAGMA application_id") { $0.int64(0) } ?? 0
        let tables = try db.queryFirst("SELECT count(*) FROM sqlite_master") { $0.int(0) } ?? 0
        if appID == 0 && tables == 0 {
            try db.executeScript("""
                BEGIN IMMEDIATE;
                PRAGMA application_id = \(applicationID);
                CREATE TABLE croupier_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE croupier_migrations (
                    component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
                    applied_at INTEGER NOT NULL, PRIMARY KEY (component, version));
                COMMIT;
                """)
            try db.execute("INSERT INTO croupier_meta (key, value) VALUES ('owner', ?)", [owner])
        } else if appID != applicationID {
            throw StorageError.notACroupierDatabase(
                path: path, reason: appID == 0 ? "it has tables but no Croupier identity" : "application_id is \(appID)")
        }
        let found = try db.queryFirst("SELECT value FROM croupier_meta WHERE key = 'owner'") { $0.string(0) } ?? ""
        guard found == owner else { throw StorageError.wrongOwner(path: path, expected: owner, found: found) }

        let applied = try db.query("SELECT component, max(version) FROM croupier_migrations GROUP BY component") {
            ($0.string(0), $0.int(1))
        }
        for m in try pending(migrations, applied: applied) {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.executeScript(m.sql)
                try db.execute(
                    "INSERT INTO croupier_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                    [m.component, m.version, m.name, SystemClock().nowMillis()])
                try db.execute("COMMIT")
            } catch {
                _ = try? db.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// The migrations still to apply, in order, given the newest version
    /// applied per component; refuses a database migrated by a newer build.
    static func pending(_ migrations: [Migration], applied: [(String, Int)]) throws -> [Migration] {
        let current = Dictionary(applied, uniquingKeysWith: max)
        let known = Dictionary(grouping: migrations, by: \.component).mapValues { $0.map(\.version).max() ?? 0 }
        for (component, version) in current where version > (known[component] ?? 0) {
            throw StorageError.schemaTooNew(component: component, found: version, known: known[component] ?? 0)
        }
        return migrations.sorted(by: { ($0.component, $0.version) < ($1.component, $1.version) })
            .filter { $0.version > (current[$0.component] ?? 0) }
    }
}
