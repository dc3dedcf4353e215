import Foundation
import Storage
import XCTest

/// Crash safety with real processes killed by SIGKILL: nothing committed is
/// lost, nothing uncommitted is visible, outboxed messages and events exist
/// if and only if their state change does, and messages a dead consumer held
/// come back after their visibility timeout.
final class CrashTests: XCTestCase {
    /// The helper is built next to the test bundle.
    var helper: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("StorageCrashHelper").path
    }

    /// Runs the helper to completion; returns its stdout lines.
    func run(_ arguments: [String]) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: helper)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "helper \(arguments) failed")
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Starts the helper, reads lines until `stop` says so, runs `beforeKill`, then SIGKILLs it.
    func runAndKill(_ arguments: [String], until stop: ([String]) -> Bool, beforeKill: () throws -> Void = {}) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: helper)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var lines: [String] = []
        var pending = Data()
        let deadline = Date().addingTimeInterval(60)
        while !stop(lines) && Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }  // the child exited
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 0x0A) {
                lines.append(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...nl)
            }
        }
        try beforeKill()
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the helper must die by SIGKILL, mid-work")
        return lines
    }

    /// A singleton runs in one process at a time: while the helper owns it,
    /// a second contender waits; once the helper is SIGKILLed, the contender
    /// takes over, and both terms are on record, in order.
    func testASingletonMovesToASurvivorWhenItsOwnerIsKilled() async throws {
        let db = try temporaryDatabasePath("crash-singleton")
        guard Database.isPostgresURL(db) else {
            // SQLite: one process owns the file; the work runs from start to stop.
            let database = try Database(path: db, owner: "crash-test", migrations: [])
            let ran = Singleton(database: database, name: "solo") { while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) } }
            ran.start()
            XCTAssertTrue(ran.isOwner)
            ran.stop()
            XCTAssertFalse(ran.isOwner)
            return
        }
        let database = try Database(path: db, owner: "crash-test", migrations: [])
        let survivor = Singleton(database: database, name: "crash", holder: "survivor", checkEvery: .milliseconds(100)) {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
        }
        defer { survivor.stop() }
        let printed = try runAndKill(["singleton", db, "crash"], until: { $0.contains("owner crash") }, beforeKill: {
            survivor.start()
            Thread.sleep(forTimeInterval: 0.5)  // five of the survivor's tries
            XCTAssertFalse(survivor.isOwner, "two processes owned the singleton at once")
        })
        XCTAssertTrue(printed.contains("owner crash"))
        let deadline = Date().addingTimeInterval(20)
        while !survivor.isOwner && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertTrue(survivor.isOwner, "no survivor took over the singleton")
        let terms = try await database.read { db in
            try db.query("SELECT holder FROM croupier_singleton_terms WHERE name = 'crash' ORDER BY term", [], { $0.string(0) })
        }
        XCTAssertEqual(terms.count, 2, "\(terms)")
        XCTAssertTrue(terms.first?.hasPrefix("helper-") == true, "\(terms)")
        XCTAssertEqual(terms.last, "survivor")
    }

    func testKillDuringConcurrentWritesLosesNothingCommittedAndShowsNothingPartial() throws {
        let db = try temporaryDatabasePath("crash-writes")
        let printed = try runAndKill(["write", db]) { lines in lines.filter { $0.hasPrefix("committed") }.count >= 400 }
        let committed = Set(printed.compactMap { $0.hasPrefix("committed ") ? Int($0.dropFirst(10)) : nil })
        XCTAssertGreaterThanOrEqual(committed.count, 400)

        let report = try run(["report", db])
        XCTAssertTrue(report.contains("integrity ok"), report.suffix(3).joined(separator: "\n"))
        let items = Set(report.compactMap { $0.hasPrefix("item ") ? Int($0.dropFirst(5)) : nil })
        let messages = Set(report.compactMap { $0.hasPrefix("message ") ? Int($0.dropFirst(8)) : nil })
        let events = Set(report.compactMap { $0.hasPrefix("event ") ? Int($0.dropFirst(6)) : nil })
        XCTAssertTrue(committed.isSubset(of: items), "acknowledged commits were lost: \(committed.subtracting(items).sorted().prefix(10))")
        XCTAssertEqual(messages, items, "an outboxed message exists if and only if its row does")
        XCTAssertEqual(events, items, "an event exists if and only if its row does")
        // Reopening after the crash and writing again works.
        _ = try runAndKill(["write", db]) { lines in lines.filter { $0.hasPrefix("committed") }.count >= 10 }
    }

    func testMessagesHeldByAKilledConsumerComeBackAfterTheVisibilityTimeout() throws {
        let db = try temporaryDatabasePath("crash-consumer")
        _ = try run(["seed", db, "10"])
        let held = try runAndKill(["hold", db, "1500", "4"]) { $0.contains("held") }
            .compactMap { $0.hasPrefix("holding ") ? Int64($0.dropFirst(8)) : nil }
        XCTAssertEqual(held.count, 4)
        let start = Date()

        // Still invisible right after the crash: only the other six groups are delivered.
        let early = try run(["receive", db, "10"]).compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Int64($0) } }
        if Date().timeIntervalSince(start) < 1.2 {
            XCTAssertEqual(early.count, 6)
            XCTAssertTrue(Set(early).isDisjoint(with: held))
        }

        Thread.sleep(forTimeInterval: max(0, 1.7 - Date().timeIntervalSince(start)))
        let late = try run(["receive", db, "10"]).map { $0.split(separator: " ") }
        XCTAssertEqual(Set(late.map { Int64($0[1])! }), Set(held), "held messages are redelivered")
        XCTAssertTrue(late.allSatisfy { $0[2] == "2" }, "as their second receive: \(late)")
    }
}
