import CSQLite
import Foundation
import Storage
import TestSupport
import XCTest

final class DatabaseTests: XCTestCase {
    func testMigrationsAreAppliedOnceAndRecorded() async throws {
        let path = try temporaryDatabasePath()
        do {
            let db = try openTestDatabase(path)
            try await db.write { try $0.execute("INSERT INTO items (label) VALUES ('a')") }
            db.close()
        }
        let db = try openTestDatabase(path)  // reopening must not re-run migration 1
        let rows = try await db.read { c in
            try c.query("SELECT component, version FROM croupier_migrations ORDER BY component") { "\($0.string(0))/\($0.int(1))" }
        }
        XCTAssertEqual(rows, ["events/1", "events/2", "offsets/1", "queue/1", "queue/2", "queue/3", "queue/4", "test/1"])
        let count = try await db.read { try $0.queryFirst("SELECT count(*) FROM items") { $0.int(0) } }
        XCTAssertEqual(count, 1)
        if !TestEngine.isPostgres {
            let mode = try await db.read { try $0.queryFirst("PRAGMA journal_mode") { $0.string(0) } }
            XCTAssertEqual(mode, "wal")
        }
    }

    func testRefusesAFileThatIsNotADatabase() throws {
        try requireSQLite("a file that is not a database")
        let path = try temporaryDatabasePath()
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try openTestDatabase(path)) { error in
            guard case StorageError.notACroupierDatabase = error else { return XCTFail("got \(error)") }
        }
    }

    func testRefusesAForeignSQLiteDatabase() throws {
        try requireSQLite("a SQLite file made by another program")
        let path = try temporaryDatabasePath()
        var raw: OpaquePointer?
        sqlite3_open(path, &raw)
        sqlite3_exec(raw, "CREATE TABLE other (x)", nil, nil, nil)
        sqlite3_close(raw)
        XCTAssertThrowsError(try openTestDatabase(path)) { error in
            XCTAssertEqual(error as? StorageError, .notACroupierDatabase(path: path, reason: "it has tables but no Croupier identity"))
        }
    }

    func testRefusesAnotherServicesDatabase() throws {
        let path = try temporaryDatabasePath()
        try openTestDatabase(path, owner: "loyalty").close()
        XCTAssertThrowsError(try openTestDatabase(path, owner: "staging")) { error in
            XCTAssertEqual(error as? StorageError, .wrongOwner(path: path, expected: "staging", found: "loyalty"))
        }
    }

    func testRefusesASchemaNewerThanTheCode() throws {
        let path = try temporaryDatabasePath()
        try Database(path: path, owner: "test", migrations: [itemsMigration, Migration("test", 2, "more", "CREATE TABLE more (x INTEGER);")]).close()
        XCTAssertThrowsError(try Database(path: path, owner: "test", migrations: [itemsMigration])) { error in
            XCTAssertEqual(error as? StorageError, .schemaTooNew(component: "test", found: 2, known: 1))
        }
    }

    /// A write whose caller gives up while it waits for its turn never runs
    /// (a call past its deadline must not commit later); a cleanup write
    /// made by an already-cancelled task does run.
    func testAWriteAbandonedWhileQueuedNeverRuns() async throws {
        var options = Database.Options()
        options.connections = 1  // PostgreSQL: one connection, so the second write queues
        let db = try openTestDatabase(try temporaryDatabasePath(), options: options)
        let started = Flag()
        let first = Task {
            try await db.write { tx in
                started.set()
                usleep(500_000)  // holds the writer (SQLite) or the only connection (PostgreSQL)
                try tx.execute("INSERT INTO items (label) VALUES ('first')")
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(5)) }
        let queued = Task { try await db.write { tx in try tx.execute("INSERT INTO items (label) VALUES ('abandoned')") } }
        try await Task.sleep(for: .milliseconds(50))
        queued.cancel()
        let outcome = await queued.result
        try await first.value
        if case .success = outcome { XCTFail("the abandoned write ran") }
        let cleanup = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await db.write { tx in try tx.execute("INSERT INTO items (label) VALUES ('cleanup')") }
        }
        _ = try await cleanup.value
        let labels = try await db.read { try $0.query("SELECT label FROM items ORDER BY label", [], { $0.string(0) }) }
        XCTAssertEqual(labels, ["cleanup", "first"])
        db.close()
    }

    /// PostgreSQL: a write that waits on a lock held by another transaction
    /// (another replica's, a cut-off replica's) when its caller gives up is
    /// stopped there and rolled back; it does not commit once the lock is free.
    func testAWriteAbandonedWhileItWaitsOnALockNeverCommits() async throws {
        try XCTSkipUnless(TestEngine.isPostgres, "PostgreSQL: a begun SQLite write waits on nothing but the disk")
        var options = Database.Options()
        options.connections = 2
        options.postgresWrites = .keyLocked
        let db = try openTestDatabase(try temporaryDatabasePath(), options: options)
        let (locked, release) = (Flag(), DispatchSemaphore(value: 0))
        let holder = Task {
            try await db.write(locking: ["k"]) { tx in
                try tx.execute("INSERT INTO items (label) VALUES ('holder')")
                locked.set()
                release.wait()  // holds the lock on "k" until the test lets go
            }
        }
        while !locked.isSet { try await Task.sleep(for: .milliseconds(5)) }
        let waiting = Task { try await db.write(locking: ["k"]) { tx in try tx.execute("INSERT INTO items (label) VALUES ('late')") } }
        try await Task.sleep(for: .milliseconds(200))  // it now waits on the lock inside PostgreSQL
        waiting.cancel()
        // Should the cancellation not reach it, let the holder go after a while: the late write then commits and fails the test.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            release.signal()
        }
        let outcome = await waiting.result
        let stillHeld = (try? await db.read { try $0.queryFirst("SELECT count(*) FROM items") { $0.int(0) } }) == 0
        watchdog.cancel()
        release.signal()
        try await holder.value
        guard case .failure(let error) = outcome else { return XCTFail("the abandoned write committed") }
        XCTAssertTrue(error is CancellationError, "\(error)")
        XCTAssertTrue(stillHeld, "the abandoned write ended only once the lock was free")
        // The connection it ran on serves the next write (no stray cancel reaches it).
        try await db.write { tx in try tx.execute("INSERT INTO items (label) VALUES ('after')") }
        let labels = try await db.read { try $0.query("SELECT label FROM items ORDER BY label", [], { $0.string(0) }) }
        XCTAssertEqual(labels, ["after", "holder"])
        db.close()
    }

    func testAThrowingWriteChangesNothing() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        do {
            try await db.write { tx in
                try tx.execute("INSERT INTO items (label) VALUES ('half')")
                throw Boom()
            }
            XCTFail("expected the error to propagate")
        } catch is Boom {}
        let count = try await db.read { try $0.queryFirst("SELECT count(*) FROM items") { $0.int(0) } }
        XCTAssertEqual(count, 0)
    }

    /// 64 concurrent callers share commits; the ones that fail roll back alone.
    func testGroupCommitIsolatesEachCallersTransaction() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<64 {
                group.addTask {
                    do {
                        try await db.write { tx in
                            try tx.execute("INSERT INTO items (label) VALUES (?)", ["item-\(i)"])
                            try tx.execute("INSERT INTO items (label) VALUES (?)", ["second-\(i)"])
                            if i % 8 == 0 { throw Boom() }
                        }
                        return (i, true)
                    } catch { return (i, false) }
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        XCTAssertEqual(outcomes.values.filter { !$0 }.count, 8)
        let labels = Set(try await db.read { try $0.query("SELECT label FROM items") { $0.string(0) } })
        for i in 0..<64 {
            XCTAssertEqual(labels.contains("item-\(i)"), i % 8 != 0, "item-\(i)")
            XCTAssertEqual(labels.contains("second-\(i)"), i % 8 != 0, "second-\(i)")
        }
    }

    func testConstraintViolationIsReportedAndRolledBack() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        try await db.write { try $0.execute("INSERT INTO items (label) VALUES ('x')") }
        do {
            try await db.write { tx in
                try tx.execute("INSERT INTO items (label) VALUES ('y')")
                try tx.execute("INSERT INTO items (label) VALUES ('x')")
            }
            XCTFail("expected a constraint violation")
        } catch let error as StorageError {
            XCTAssertTrue(error.isConstraintViolation, "\(error)")
        }
        let labels = try await db.read { try $0.query("SELECT label FROM items ORDER BY label") { $0.string(0) } }
        XCTAssertEqual(labels, ["x"])
    }

    func testAfterCommitHooksRunOnlyForCommittedWork() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let fired = Received()
        try await db.write { tx in tx.afterCommit { Task { await fired.add(1) } } }
        _ = try? await db.write { tx in
            tx.afterCommit { Task { await fired.add(2) } }
            throw Boom()
        }
        try await Task.sleep(for: .milliseconds(50))
        let values = await fired.values
        XCTAssertEqual(values, [1])
    }

    func testReadsSeeOneCommittedSnapshot() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        try await db.write { tx in for i in 0..<100 { try tx.execute("INSERT INTO items (label) VALUES (?)", ["r\(i)"]) } }
        async let writes: Void = {
            for i in 0..<50 { _ = try? await db.write { try $0.execute("INSERT INTO items (label) VALUES (?)", ["w\(i)"]) } }
        }()
        for _ in 0..<20 {
            // Two counts in one read are always equal: same snapshot.
            let (a, b) = try await db.read { c in
                (try c.queryFirst("SELECT count(*) FROM items") { $0.int(0) }!, try c.queryFirst("SELECT count(*) FROM items") { $0.int(0) }!)
            }
            XCTAssertEqual(a, b)
        }
        await writes
    }
}

actor Received {
    var values: [Int] = []
    func add(_ v: Int) { values.append(v) }
}
