import Foundation
import Storage
import Synchronization
import XCTest

/// A clock tests move by hand: visibility, windows and retention without sleeping.
final class ManualClock: StorageClock {
    private let now = Mutex<Int64>(1_700_000_000_000)
    func nowMillis() -> Int64 { now.withLock { $0 } }
    func advance(millis: Int64) { now.withLock { $0 += millis } }
}

func temporaryDatabasePath(_ name: String = "db") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-storage-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("\(name).sqlite").path
}

let itemsMigration = Migration("test", 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE);")

func openTestDatabase(_ path: String, owner: String = "test", options: Database.Options = Database.Options()) throws -> Database {
    try Database(
        path: path, owner: owner,
        migrations: [itemsMigration] + DurableQueue.migrations + EventLog.migrations + OffsetStore.migrations,
        options: options)
}

struct Boom: Error {}
