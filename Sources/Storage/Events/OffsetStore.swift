/// Where each named consumer of an event stream has got to.
///
/// Saving the offset inside the same transaction as the effects of the
/// events up to it (`save(_:name:offset:)`) makes a consumer exactly-once
/// with respect to its own database: after a crash it resumes from the last
/// offset whose effects committed.
public struct OffsetStore: Sendable {
    let database: Database
    let clock: any StorageClock

    public static let migrations = [
        Migration("offsets", 1, "consumer offsets", """
            CREATE TABLE consumer_offsets (
                name TEXT PRIMARY KEY,
                offset INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            );
            """),
    ]

    public init(database: Database, clock: any StorageClock = SystemClock()) {
        self.database = database
        self.clock = clock
    }

    /// The stored offset, nil if the consumer never saved one.
    public func load(_ name: String) async throws -> Int64? {
        try await database.read { db in
            try db.queryFirst("SELECT offset FROM consumer_offsets WHERE name = ?", [name]) { $0.int64(0) }
        }
    }

    public func load(_ tx: Transaction, name: String) throws -> Int64? {
        try tx.queryFirst("SELECT offset FROM consumer_offsets WHERE name = ?", [name]) { $0.int64(0) }
    }

    /// Saves inside the caller's transaction.
    public func save(_ tx: Transaction, name: String, offset: Int64) throws {
        try tx.execute("""
            INSERT INTO consumer_offsets (name, offset, updated_at) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET offset = excluded.offset, updated_at = excluded.updated_at
            """, [name, offset, clock.nowMillis()])
    }

    public func save(_ name: String, offset: Int64) async throws {
        try await database.write { tx in try self.save(tx, name: name, offset: offset) }
    }
}
