import Storage
import XCTest

final class EventLogTests: XCTestCase {
    func testEventCommitsWithTheStateChange() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let log = EventLog(database: db)
        _ = try? await db.write { tx in
            try tx.execute("INSERT INTO items (label) VALUES ('x')")
            try log.append(tx, stream: "game-a", type: "entity-change", payload: [1])
            throw Boom()
        }
        let offset = try await db.write { tx in
            try tx.execute("INSERT INTO items (label) VALUES ('y')")
            return try log.append(tx, stream: "game-a", type: "entity-change", payload: [2])
        }
        let events = try await log.read(after: 0, limit: 10)
        XCTAssertEqual(events.map(\.payload), [[2]])
        XCTAssertEqual(events.first?.offset, offset)
    }

    /// A subscriber wakes for an event another connection (on PostgreSQL,
    /// another process would do the same) commits, through the database's
    /// notification, not its poll: the poll here is ten minutes.
    func testASubscriberWakesForAnotherWritersCommit() async throws {
        let path = try temporaryDatabasePath()
        let reader = try openTestDatabase(path)
        guard reader.dialect == .postgres else {
            throw XCTSkip("SQLite: one process writes a file, and its own commits raise the signal")
        }
        let writer = try openTestDatabase(path)
        let subscription = EventLog(database: reader).subscribe(after: 0, poll: .seconds(600))
        let first = Task { () -> [UInt8]? in
            for try await e in subscription { return e.payload }
            return nil
        }
        try await Task.sleep(for: .milliseconds(300))  // the subscriber is asleep on its signal
        try await writer.write { tx in _ = try EventLog(database: writer).append(tx, stream: "s", type: "t", payload: [7]) }
        let woke = Task {
            try await Task.sleep(for: .seconds(30))
            first.cancel()
        }
        let payload = try await first.value
        woke.cancel()
        XCTAssertEqual(payload, [7], "the subscriber did not wake for the other connection's commit")
        writer.close()
        reader.close()
    }

    func testReadFiltersByStream() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let log = EventLog(database: db)
        try await db.write { tx in
            for i in 0..<6 { try log.append(tx, stream: i % 2 == 0 ? "even" : "odd", type: "t", payload: [UInt8(i)]) }
        }
        let v1 = try await log.read(after: 0, limit: 10, stream: "odd").map(\.payload)
        XCTAssertEqual(v1, [[1], [3], [5]])
        let v2 = try await log.read(after: 2, limit: 2).map(\.payload)
        XCTAssertEqual(v2, [[2], [3]])
    }

    /// A subscriber that disconnects and resumes from its last offset sees
    /// every event exactly once while writers keep appending.
    func testResumingSubscriberSeesEveryEventExactlyOnce() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let log = EventLog(database: db)
        let total = 600
        let writers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<3 {
                    group.addTask {
                        for i in 0..<(total / 3) {
                            try await db.write { tx in
                                try log.append(tx, stream: "s", type: "t", payload: Array("\(w)-\(i)".utf8))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        var seen: [Int64] = []
        var payloads = Set<String>()
        var last: Int64 = 0
        while seen.count < total {
            // Each "connection" takes a few events, then drops.
            var taken = 0
            for try await event in log.subscribe(after: last, poll: .milliseconds(10)) {
                seen.append(event.offset)
                payloads.insert(String(decoding: event.payload, as: UTF8.self))
                last = event.offset
                taken += 1
                if taken == 37 || seen.count == total { break }
            }
        }
        try await writers.value
        XCTAssertEqual(seen.count, total)
        XCTAssertEqual(payloads.count, total, "no duplicates")
        XCTAssertEqual(seen, seen.sorted(), "offsets increase")
        XCTAssertEqual(Set(seen).count, total)
    }

    func testSubscriptionEndsWhenCancelled() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let log = EventLog(database: db)
        let task = Task { () -> Int in
            var n = 0
            for try await _ in log.subscribe(after: 0, poll: .milliseconds(10)) { n += 1 }
            return n
        }
        try await db.write { tx in try log.append(tx, stream: "s", type: "t", payload: []) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let n = try await task.value
        XCTAssertEqual(n, 1)
    }

    func testPrunedOffsetsAreReportedNotSkipped() async throws {
        let clock = ManualClock()
        let db = try openTestDatabase(try temporaryDatabasePath())
        let log = EventLog(database: db, clock: clock)
        try await db.write { tx in for _ in 0..<3 { try log.append(tx, stream: "s", type: "old", payload: []) } }
        clock.advance(millis: 10_000)
        try await db.write { tx in try log.append(tx, stream: "s", type: "new", payload: []) }
        let v3 = try await log.prune(olderThanMillis: clock.nowMillis() - 5_000)
        XCTAssertEqual(v3, 3)
        do {
            _ = try await log.read(after: 1, limit: 10)
            XCTFail("expected offsetPruned")
        } catch let error as EventLogError {
            XCTAssertEqual(error, .offsetPruned(requested: 1, oldestAvailable: 4))
        }
        let v4 = try await log.read(after: 3, limit: 10).map(\.type)
        XCTAssertEqual(v4, ["new"])
        let v5 = try await log.lastOffset()
        XCTAssertEqual(v5, 4)
    }

    func testOffsetStoreSavesWithTheConsumersWork() async throws {
        let db = try openTestDatabase(try temporaryDatabasePath())
        let offsets = OffsetStore(database: db)
        let v6 = try await offsets.load("runtime")
        XCTAssertNil(v6)
        try await offsets.save("runtime", offset: 41)
        _ = try? await db.write { tx in
            try offsets.save(tx, name: "runtime", offset: 99)
            throw Boom()
        }
        let v7 = try await offsets.load("runtime")
        XCTAssertEqual(v7, 41)
        try await db.write { tx in try offsets.save(tx, name: "runtime", offset: 42) }
        let v8 = try await offsets.load("runtime")
        XCTAssertEqual(v8, 42)
    }
}
