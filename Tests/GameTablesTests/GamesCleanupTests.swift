import Foundation
import GameTablesService
import Storage
import Wire
import TestSupport
import XCTest

/// The Games side of the cleanup over a real socket and database file.
final class GamesCleanupTests: XCTestCase {
    let archivedAt = ArchiveTime.of(dayContaining: GameTablesHarness.start)

    func testArchiveTimeIsElevenElevenElevenUTC() {
        // 2026-11-23T11:11:11Z
        XCTAssertEqual(archivedAt, 1_795_392_000_000 + 40_271_000)
    }

    func testRequestsAreValidated() async throws {
        let h = try await GameTablesHarness()
        let c = h.cleanup
        var code = await statusOf { try await c.cleanupGameTables(h.cleanupRequest("r1", Array(1...501))) }.0
        XCTAssertEqual(code, .invalidArgument, "more than 500 ids")
        code = await statusOf { try await c.cleanupGameTables(h.cleanupRequest("r1", [])) }.0
        XCTAssertEqual(code, .invalidArgument)
        code = await statusOf { try await c.cleanupGameTables(h.cleanupRequest("", [1])) }.0
        XCTAssertEqual(code, .invalidArgument)
        code = await statusOf { try await c.cleanupGameTables(h.cleanupRequest("r1", [1, 1])) }.0
        XCTAssertEqual(code, .invalidArgument)
        code = await statusOf { try await c.cleanupGameTables(h.cleanupRequest("r1", [1], action: .unspecified)) }.0
        XCTAssertEqual(code, .invalidArgument)
        var noTime = h.cleanupRequest("r1", [1])
        noTime.archivedAtMs = 0
        code = await statusOf { try await c.cleanupGameTables(noTime) }.0
        XCTAssertEqual(code, .invalidArgument)
        code = await statusOf { try await c.getOperation(.with { $0.operationId = "nope" }) }.0
        XCTAssertEqual(code, .notFound)
        let messages = try await h.games.cleanup.messageCount()
        XCTAssertEqual(messages, 0, "a refused request stores nothing")
        await h.stop()
    }

    func testSyncCleanupArchivesWithVersionsAndTheSameRequestIsOneOperation() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...250))
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("req-1", Array(1...250) + [9_999], action: .delete))
        XCTAssertEqual(op.status, .deferred)
        XCTAssertEqual(op.affectedIds, Array(1...250))
        XCTAssertEqual(op.missingIds, [9_999])
        let tables = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...250) }).tables
        XCTAssertTrue(tables.allSatisfy { !$0.active && $0.archivedAtMs == archivedAt }, "DELETE archives first")
        let versions = try await h.cleanup.listVersions(.with { $0.tableId = 7 }).versions
        XCTAssertEqual(versions.map(\.event), ["archive"])
        XCTAssertEqual(versions.first?.operationId, op.operationId)
        XCTAssertTrue(versions.first?.beforeJson.contains("\"active\":true") ?? false)
        XCTAssertTrue(versions.first?.afterJson.contains("\"archived_at_ms\":\(archivedAt)") ?? false)

        let again = try await h.cleanup.cleanupGameTables(h.cleanupRequest("req-1", Array(1...250) + [9_999], action: .delete))
        XCTAssertEqual(again.operationId, op.operationId, "the same request id returns the same operation")
        let versionsAfter = try await h.cleanup.listVersions(.with { $0.tableId = 7 }).versions
        XCTAssertEqual(versionsAfter.count, 1)
        await h.stop()
    }

    func testAsyncOperationMovesReceivedInProgressDeferred() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(50)
        let h = try await GameTablesHarness(settings: settings)
        try await h.games.start()
        try await h.loadGameTables(Array(1...300))
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("async-1", Array(1...300), async: true))
        XCTAssertEqual(op.status, .received)
        let seen = Collected<Croupier_Gametables_V1_OperationStatus>()
        try await eventually("DEFERRED") {
            let s = try await h.cleanup.getOperation(.with { $0.operationId = op.operationId }).status
            seen.append(s)
            return s == .deferred
        }
        XCTAssertTrue(seen.all.contains(.inProgress), "\(seen.all)")
        await h.stop()
    }

    func testAFailingRowRollsBackTheWholeRequest() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...250), inPlay: [230])  // fails in the third batch of 100
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("bad-1", Array(1...250)))
        XCTAssertEqual(op.status, .failed)
        XCTAssertTrue(op.failure.contains("table 230"), op.failure)
        XCTAssertEqual(op.affectedIds, [])
        let tables = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...250) }).tables
        XCTAssertTrue(tables.allSatisfy { $0.active && $0.archivedAtMs == 0 }, "all or nothing")
        let versions = try await h.cleanup.listVersions(.with { $0.tableId = 5 }).versions
        XCTAssertEqual(versions.map(\.event), ["archive", "revert"], "the audit trail shows the rollback")
        await h.stop()
    }

    func testOneOperationNeverRunsTwiceAtOnce() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(100)
        let h = try await GameTablesHarness(settings: settings)
        try await h.loadGameTables(Array(1...300))
        let (op, _) = try await h.games.cleanup.receive(
            requestID: "dup", action: .archive, ids: Array(1...300), archivedAtMillis: archivedAt, body: [])
        async let first = h.games.worker.execute(op.operationID)
        try await Task.sleep(for: .milliseconds(20))
        async let second = h.games.worker.execute(op.operationID)
        let (a, b) = await (first, second)
        XCTAssertEqual([a, b].filter { !$0 }.count, 1, "the second delivery is skipped while the first holds the lock")
        let done = try await h.games.cleanup.operation(op.operationID)
        XCTAssertEqual(done?.status, .deferred)
        for id: Int64 in [1, 150, 300] {
            let count = try await h.cleanup.listVersions(.with { $0.tableId = id }).versions.count
            XCTAssertEqual(count, 1)
        }
        // A later delivery of the finished operation changes nothing.
        _ = await h.games.worker.execute(op.operationID)
        let count = try await h.cleanup.listVersions(.with { $0.tableId = 1 }).versions.count
        XCTAssertEqual(count, 1)
        await h.stop()
    }

    func testThePauseBetweenBatchesHoldsNoWriteLock() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .seconds(2)
        let h = try await GameTablesHarness(settings: settings)
        try await h.loadGameTables(Array(1...200))
        let (op, _) = try await h.games.cleanup.receive(
            requestID: "slow", action: .archive, ids: Array(1...200), archivedAtMillis: archivedAt, body: [])
        let run = Task { await h.games.worker.execute(op.operationID) }
        try await eventually("the first batch") { try await h.games.cleanup.operation(op.operationID)?.nextBatch == 1 }
        // Another writer gets through while the operation pauses.
        try await h.loadGameTables([5_000])
        let during = try await h.games.cleanup.operation(op.operationID)
        XCTAssertEqual(during?.status, .inProgress, "the write finished inside the pause")
        _ = await run.value
        let after = try await h.games.cleanup.operation(op.operationID)
        XCTAssertEqual(after?.status, .deferred)
        await h.stop()
    }

    func testPurgeContinuesPastAFailingRow() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...20))
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("p-1", Array(1...20)))
        XCTAssertEqual(op.status, .deferred)
        // Table 7 got a session after archiving: it must not be hard-deleted.
        let archivedAt = self.archivedAt
        _ = try await h.cleanup.loadGameTables { w in
            try await w.write(.with {
                $0.id = 7
                $0.name = "table-7"
                $0.currency = "USD"
                $0.active = false
                $0.archivedAtMs = archivedAt
                $0.inPlay = true
            })
        }
        let purged = try await h.cleanup.purgeArchived(.with { $0.operationId = op.operationId })
        XCTAssertEqual(purged.status, .processed)
        XCTAssertEqual(purged.purged, 19)
        XCTAssertEqual(purged.purgeFailures, ["table 7: in play"])
        let left = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...20) })
        XCTAssertEqual(left.tables.map(\.id), [7])
        let versions = try await h.cleanup.listVersions(.with { $0.tableId = 3 }).versions
        XCTAssertEqual(versions.map(\.event), ["archive", "destroy"])
        // Purging again is a no-op; purging an operation that is not DEFERRED is refused.
        let again = try await h.cleanup.purgeArchived(.with { $0.operationId = op.operationId })
        XCTAssertEqual(again.purged, 19)
        try await h.loadGameTables([100], inPlay: [100])
        let failed = try await h.cleanup.cleanupGameTables(h.cleanupRequest("p-2", [100]))
        let code = await statusOf { try await h.cleanup.purgeArchived(.with { $0.operationId = failed.operationId }) }.0
        XCTAssertEqual(code, .failedPrecondition)
        await h.stop()
    }

    func testTheCleanerSparesDeferredOperations() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...4))
        let kept = try await h.cleanup.cleanupGameTables(h.cleanupRequest("c-1", [1, 2]))
        let done = try await h.cleanup.cleanupGameTables(h.cleanupRequest("c-2", [3, 4]))
        _ = try await h.cleanup.purgeArchived(.with { $0.operationId = done.operationId })
        XCTAssertEqual(kept.status, .deferred)
        h.clock.advance(seconds: 8 * 86_400)
        try await h.loadGameTables([50])
        _ = try await h.cleanup.cleanupGameTables(h.cleanupRequest("c-3", [50]))  // recent: kept by age
        let removed = try await h.games.cleanup.cleanMessages(receivedBefore: h.clock.nowMillis() - 7 * 86_400_000)
        XCTAssertEqual(removed, 1, "only the processed operation's old message")
        let left = try await h.games.cleanup.messageCount()
        XCTAssertEqual(left, 2)
        await h.stop()
    }
}
