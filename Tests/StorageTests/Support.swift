import Foundation
import Storage
import Synchronization
import TestSupport
import XCTest

/// A clock tests move by hand: visibility, windows and retention without sleeping.
final class ManualClock: StorageClock {
    private let now = Mutex<Int64>(1_700_000_000_000)
    func nowMillis() -> Int64 { now.withLock { $0 } }
    func advance(millis: Int64) { now.withLock { $0 += millis } }
}

/// A fresh database: a SQLite file, or a PostgreSQL database when the tests run on that engine.
func temporaryDatabasePath(_ name: String = "db") throws -> String { try TestEngine.location(name) }

/// Skips a test about SQLite files themselves when the suite runs on PostgreSQL.
func requireSQLite(_ why: String) throws {
    try XCTSkipIf(TestEngine.isPostgres, "SQLite only: \(why)")
}

let itemsMigration = Migration("test", 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE);")

func openTestDatabase(_ path: String, owner: String = "test", options: Database.Options = Database.Options()) throws -> Database {
    try Database(
        path: path, owner: owner,
        migrations: [itemsMigration] + DurableQueue.migrations + EventLog.migrations + OffsetStore.migrations,
        options: options)
}

struct Boom: Error {}
