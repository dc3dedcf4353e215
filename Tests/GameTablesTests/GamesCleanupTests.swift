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

    func testAFailingRowChangesNothingAndLeavesNoTrail() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...250), inPlay: [230])  // fails in the third batch of 100
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("bad-1", Array(1...250)))
        XCTAssertEqual(op.status, .failed)
        XCTAssertTrue(op.failure.contains("table 230"), op.failure)
        XCTAssertEqual(op.affectedIds, [])
        let tables = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...250) }).tables
        XCTAssertTrue(tables.allSatisfy { $0.active && $0.archivedAtMs == 0 }, "all or nothing")
        for id: Int64 in [5, 150, 230] {
            let versions = try await h.cleanup.listVersions(.with { $0.tableId = id }).versions
            XCTAssertEqual(versions.map(\.event), [], "only changes that became visible get version rows")
        }
        await h.stop()
    }

    /// Readers poll every table of two requests while they run (one fails in
    /// its third batch, one succeeds): each read sees all of a request or none.
    func testAReaderNeverSeesAPartialRequest() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(100)
        let h = try await GameTablesHarness(settings: settings)
        try await h.games.start()
        let failing = Array(Int64(1)...300)
        let passing = Array(Int64(1_001)...1_300)
        try await h.loadGameTables(failing + passing, inPlay: [290])
        let bad = try await h.cleanup.cleanupGameTables(h.cleanupRequest("partial-bad", failing, async: true))
        let good = try await h.cleanup.cleanupGameTables(h.cleanupRequest("partial-good", passing, async: true))
        var reads = 0
        while true {
            let a = try await h.cleanup.getGameTables(.with { $0.ids = failing }).tables.filter { !$0.active }.count
            let b = try await h.cleanup.getGameTables(.with { $0.ids = passing }).tables.filter { !$0.active }.count
            reads += 1
            XCTAssertEqual(a, 0, "read \(reads): \(a) tables of the failing request were visible")
            XCTAssertTrue(b == 0 || b == passing.count, "read \(reads): \(b) of \(passing.count) tables of a request were visible")
            let badState = try await h.cleanup.getOperation(.with { $0.operationId = bad.operationId }).status
            let goodState = try await h.cleanup.getOperation(.with { $0.operationId = good.operationId }).status
            if badState == .failed && goodState == .deferred { break }
            XCTAssertTrue(reads < 100_000, "the requests finish")
        }
        XCTAssertGreaterThan(reads, 2, "the readers ran while the requests did")
        let final = try await h.cleanup.getGameTables(.with { $0.ids = passing }).tables
        XCTAssertTrue(final.allSatisfy { !$0.active })
        await h.stop()
    }

    /// B archives ten of A's tables while A runs; A then fails. B's tables
    /// stay archived: a failure undoes nothing of another request's work.
    func testAFailedRequestNeverUndoesAnotherRequestsWork() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(150)
        let h = try await GameTablesHarness(settings: settings)
        try await h.loadGameTables(Array(1...300), inPlay: [300])
        let (a, _) = try await h.games.cleanup.receive(
            requestID: "A", action: .archive, ids: Array(1...300), archivedAtMillis: archivedAt, body: [])
        let runA = Task { await h.games.worker.execute(a.operationID) }
        try await eventually("A's first batch") {
            try await h.cleanup.getOperation(.with { $0.operationId = a.operationID }).batchesChecked == 1
        }
        let b = try await h.cleanup.cleanupGameTables(h.cleanupRequest("B", Array(1...10)))
        XCTAssertEqual(b.status, .deferred)
        _ = await runA.value
        let failedA = try await h.cleanup.getOperation(.with { $0.operationId = a.operationID })
        XCTAssertEqual(failedA.status, .failed)
        let tables = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...10) }).tables
        XCTAssertTrue(tables.allSatisfy { !$0.active && $0.archivedAtMs == archivedAt }, "B's tables stay archived")
        let bAfter = try await h.cleanup.getOperation(.with { $0.operationId = b.operationId })
        XCTAssertEqual(bAfter.affectedIds, Array(1...10))
        let trail = try await h.cleanup.listVersions(.with { $0.tableId = 3 }).versions
        XCTAssertEqual(trail.map(\.event), ["archive"])
        XCTAssertEqual(trail.first?.operationId, b.operationId)
        let untouched = try await h.cleanup.getGameTables(.with { $0.ids = Array(11...299) }).tables
        XCTAssertTrue(untouched.allSatisfy(\.active), "A changed nothing")
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

    /// Replicas share the database: an operation another replica runs is
    /// left to it while its lease is live (that replica may only be slow),
    /// and taken over once the lease ran out (that replica died).
    func testAnotherReplicaWaitsForTheRunnersLeaseThenTakesOver() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(200)
        let h = try await GameTablesHarness(settings: settings)
        try await h.loadGameTables(Array(1...300))
        let other = try GamesRole(path: h.games.database.path, settings: settings, clock: h.clock, log: { _ in })
        let (op, _) = try await h.games.cleanup.receive(
            requestID: "leased", action: .archive, ids: Array(1...300), archivedAtMillis: archivedAt, body: [])
        let runner = Task { await h.games.worker.execute(op.operationID) }
        try await eventually("the first runner under way") { (h.games.worker.progress(of: op.operationID)?.checked ?? 0) >= 1 }
        _ = await other.worker.execute(op.operationID)
        XCTAssertNil(other.worker.progress(of: op.operationID))
        var status = try await h.games.cleanup.operation(op.operationID)?.status
        XCTAssertEqual(status, .inProgress, "the other replica ran an operation whose runner holds its lease")
        runner.cancel()  // the runner dies mid-operation; its lease stays until it runs out
        _ = await runner.value
        _ = await other.worker.execute(op.operationID)
        status = try await h.games.cleanup.operation(op.operationID)?.status
        XCTAssertEqual(status, .inProgress, "taken over before the dead runner's lease ran out")
        h.clock.advance(seconds: 31)
        _ = await other.worker.execute(op.operationID)
        status = try await h.games.cleanup.operation(op.operationID)?.status
        XCTAssertEqual(status, .deferred)
        for id: Int64 in [1, 150, 300] {
            let count = try await h.cleanup.listVersions(.with { $0.tableId = id }).versions.count
            XCTAssertEqual(count, 1)
        }
        other.stop()
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
        try await eventually("the first batch") {
            let progress = try await h.cleanup.getOperation(.with { $0.operationId = op.operationID })
            return progress.batchesChecked == 1 && progress.batches == 2
        }
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
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("p-1", Array(1...20), action: .delete))
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
        let failed = try await h.cleanup.cleanupGameTables(h.cleanupRequest("p-2", [100], action: .delete))
        let code = await statusOf { try await h.cleanup.purgeArchived(.with { $0.operationId = failed.operationId }) }.0
        XCTAssertEqual(code, .failedPrecondition)
        await h.stop()
    }

    func testTheCleanerSparesDeferredOperations() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...4))
        let kept = try await h.cleanup.cleanupGameTables(h.cleanupRequest("c-1", [1, 2], action: .delete))
        let done = try await h.cleanup.cleanupGameTables(h.cleanupRequest("c-2", [3, 4], action: .delete))
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

/// Purge only deletes what was to be deleted; the operator's views.
final class GamesOperationsTests: XCTestCase {
    let archivedAt = ArchiveTime.of(dayContaining: GameTablesHarness.start)

    func request(_ h: GameTablesHarness, _ id: String, _ ids: [Int64], _ action: Croupier_Gametables_V1_CleanupAction, run: String)
        -> Croupier_Gametables_V1_CleanupGameTablesRequest
    {
        var r = h.cleanupRequest(id, ids, action: action)
        r.runId = run
        return r
    }

    func testOnlyDeleteOperationsArePurgedAndARunPurgesInOneCall() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...30))
        // Run "r1": two DELETE slices and one ARCHIVE slice; table 5 is in both a DELETE and the ARCHIVE slice.
        let d1 = try await h.cleanup.cleanupGameTables(request(h, "r1/s/0", Array(1...10), .delete, run: "r1"))
        let d2 = try await h.cleanup.cleanupGameTables(request(h, "r1/s/1", Array(11...20), .delete, run: "r1"))
        let keep = try await h.cleanup.cleanupGameTables(request(h, "r1/t/0", Array(21...30) + [5], .archive, run: "r1"))
        for op in [d1, d2, keep] { XCTAssertEqual(op.status, .deferred) }
        XCTAssertEqual(keep.runId, "r1")

        let (code, message) = await statusOf { try await h.cleanup.purgeArchived(.with { $0.operationId = keep.operationId }) }
        XCTAssertEqual(code, .failedPrecondition, "an ARCHIVE operation's tables had traffic and are kept")
        XCTAssertTrue(message.contains("ARCHIVE"), message)
        let kept = try await h.cleanup.getGameTables(.with { $0.ids = Array(21...30) }).tables
        XCTAssertEqual(kept.count, 10, "nothing was deleted")
        let keepAfter = try await h.cleanup.getOperation(.with { $0.operationId = keep.operationId })
        XCTAssertEqual(keepAfter.status, .deferred)

        let purge = try await h.cleanup.purgeCleanupRun(.with { $0.runId = "r1" })
        XCTAssertEqual(purge.purged, 19, "20 DELETE tables, one of which an ARCHIVE operation keeps")
        XCTAssertEqual(purge.archiveOperationsKept, 1)
        XCTAssertEqual(Set(purge.operations.map(\.operationId)), [d1.operationId, d2.operationId])
        XCTAssertTrue(purge.operations.allSatisfy { $0.status == .processed })
        let first = purge.operations.first { $0.operationId == d1.operationId }
        XCTAssertEqual(first?.purgeFailures, ["table 5: kept, archived with traffic by operation \(keep.operationId)"])
        let left = try await h.cleanup.getGameTables(.with { $0.ids = Array(1...30) }).tables.map(\.id)
        XCTAssertEqual(left, [5] + Array(21...30))
        // Again: nothing more to purge. An unknown run is NOT_FOUND.
        let again = try await h.cleanup.purgeCleanupRun(.with { $0.runId = "r1" })
        XCTAssertEqual(again.purged, 0)
        let unknown = await statusOf { try await h.cleanup.purgeCleanupRun(.with { $0.runId = "nope" }) }.0
        XCTAssertEqual(unknown, .notFound)
        await h.stop()
    }

    func testVersionRowsNameTheCallerAndTheCorrelationID() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...3))
        var metadata = Metadata()
        metadata.set(ForwardedCaller.principalKey, "alice")
        metadata.set("x-correlation-id", "corr-alice-1")
        let op = try await h.cleanup.cleanupGameTables(
            h.cleanupRequest("who-1", [1, 2, 3], action: .delete), options: .timeout(.seconds(10), metadata: metadata))
        XCTAssertEqual(op.principal, "alice")
        XCTAssertEqual(op.correlationId, "corr-alice-1")
        metadata.set(ForwardedCaller.principalKey, "bob")
        metadata.set("x-correlation-id", "corr-bob-7")
        _ = try await h.cleanup.purgeArchived(.with { $0.operationId = op.operationId }, options: .timeout(.seconds(10), metadata: metadata))
        let trail = try await h.cleanup.listVersions(.with { $0.tableId = 2 }).versions
        XCTAssertEqual(trail.map(\.event), ["archive", "destroy"])
        XCTAssertEqual(trail.map(\.actor), ["alice", "bob"])
        XCTAssertEqual(trail.map(\.correlationId), ["corr-alice-1", "corr-bob-7"])
        await h.stop()
    }

    func testListOperationsFiltersByStatusActionAndRunAndPages() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...40), inPlay: [40])
        for n in 0..<7 {
            _ = try await h.cleanup.cleanupGameTables(request(h, "l/\(n)", [Int64(n + 1)], n % 2 == 0 ? .delete : .archive, run: "run-l"))
        }
        _ = try await h.cleanup.cleanupGameTables(request(h, "other/0", [20], .delete, run: "run-m"))
        _ = try await h.cleanup.cleanupGameTables(request(h, "bad/0", [40], .delete, run: "run-m"))
        var all: [Croupier_Gametables_V1_Operation] = []
        var token = ""
        var pages = 0
        repeat {
            let page = try await h.cleanup.listOperations(.with { $0.runId = "run-l"; $0.pageSize = 3; $0.pageToken = token })
            all += page.operations
            token = page.nextPageToken
            pages += 1
        } while !token.isEmpty
        XCTAssertEqual(all.map(\.requestId), (0..<7).map { "l/\($0)" }, "oldest first, every one once")
        XCTAssertGreaterThanOrEqual(pages, 3)
        let deletes = try await h.cleanup.listOperations(.with { $0.runId = "run-l"; $0.action = .delete }).operations
        XCTAssertEqual(deletes.map(\.requestId), ["l/0", "l/2", "l/4", "l/6"])
        let failed = try await h.cleanup.listOperations(.with { $0.status = .failed }).operations
        XCTAssertEqual(failed.map(\.requestId), ["bad/0"])
        let bad = await statusOf { try await h.cleanup.listOperations(.with { $0.pageToken = "x" }) }.0
        XCTAssertEqual(bad, .invalidArgument)
        let tooBig = await statusOf { try await h.cleanup.listOperations(.with { $0.pageSize = 500 }) }.0
        XCTAssertEqual(tooBig, .invalidArgument)
        await h.stop()
    }

    /// The list says what the cleaner's next pass keeps and why, and the pass does exactly that.
    func testIntegrationMessagesSayWhatTheCleanerKeeps() async throws {
        let h = try await GameTablesHarness()
        try await h.loadGameTables(Array(1...6))
        let deferred = try await h.cleanup.cleanupGameTables(h.cleanupRequest("m-deferred", [1, 2], action: .delete))
        let processed = try await h.cleanup.cleanupGameTables(h.cleanupRequest("m-processed", [3, 4], action: .delete))
        _ = try await h.cleanup.purgeArchived(.with { $0.operationId = processed.operationId })
        h.clock.advance(seconds: 8 * 86_400)
        let recent = try await h.cleanup.cleanupGameTables(h.cleanupRequest("m-recent", [5, 6], action: .delete))
        _ = try await h.cleanup.purgeArchived(.with { $0.operationId = recent.operationId })  // kept by age alone
        let list = try await h.cleanup.listIntegrationMessages(.init())
        XCTAssertEqual(list.retentionSeconds, 7 * 86_400)
        let byRequest = Dictionary(uniqueKeysWithValues: list.messages.map { ($0.requestId, $0) })
        XCTAssertEqual(byRequest["m-deferred"]?.kept, true)
        XCTAssertTrue(byRequest["m-deferred"]?.reason.contains("DEFERRED") ?? false)
        XCTAssertEqual(byRequest["m-deferred"]?.operationId, deferred.operationId)
        XCTAssertEqual(byRequest["m-processed"]?.kept, false)
        XCTAssertEqual(byRequest["m-processed"]?.operationStatus, .processed)
        XCTAssertEqual(byRequest["m-recent"]?.kept, true)
        XCTAssertTrue(byRequest["m-recent"]?.reason.contains("younger than the retention") ?? false)
        let removed = try await h.games.cleanup.cleanMessages(receivedBefore: h.clock.nowMillis() - 7 * 86_400_000)
        XCTAssertEqual(removed, list.messages.filter { !$0.kept }.count)
        let after = try await h.cleanup.listIntegrationMessages(.init()).messages.map(\.requestId)
        XCTAssertEqual(Set(after), Set(list.messages.filter(\.kept).map(\.requestId)))
        await h.stop()
    }

    func testGetOperationWaitsForTheOutcome() async throws {
        var settings = GameTablesHarness.fastSettings
        settings.batchPause = .milliseconds(100)
        let h = try await GameTablesHarness(settings: settings)
        try await h.games.start()
        try await h.loadGameTables(Array(1...300))
        let op = try await h.cleanup.cleanupGameTables(h.cleanupRequest("wait-1", Array(1...300), async: true))
        let done = try await h.cleanup.getOperation(.with { $0.operationId = op.operationId; $0.waitMs = 10_000 })
        XCTAssertEqual(done.status, .deferred, "the long poll answers once the operation is final")
        XCTAssertEqual(done.affectedIds.count, 300)
        let bad = await statusOf { try await h.cleanup.getOperation(.with { $0.operationId = op.operationId; $0.waitMs = 60_000 }) }.0
        XCTAssertEqual(bad, .invalidArgument)
        await h.stop()
    }
}
