import Foundation
@testable import StagingService
import Storage
import Synchronization
import Wire
import TestSupport
import XCTest

/// The diff queue and worker, manual mutations, deploy and the event stream.
final class DiffTests: XCTestCase {
    func testImportRunsEachGetADiffAndTheQueueChecksWhatItIsAskedFor() async throws {
        let h = try await StagingHarness()
        let run1 = try await h.importGame("dedup", StagingHarness.cards(3))
        _ = try await h.waitForRun(run1)
        let run2 = try await h.importGame("dedup", StagingHarness.cards(4))
        _ = try await h.waitForRun(run2)
        let queue = Croupier_Staging_V1_DiffQueue.Client(channel: h.channel)
        let manual = Croupier_Staging_V1_EnqueueDiffRequest.with {
            $0.gameSlug = "dedup"
            $0.trigger = .manual
            $0.entityType = "card"
            $0.entitySlug = "c1"
        }
        // Identical manual requests collapse only while the first waits (DurableQueueTests checks the
        // scope exactly); here the worker may take the first at once, so only the import runs are compared.
        // The importer already asked for both runs' diffs: asking again is a duplicate of each, never a merge of the two.
        let i1 = try await queue.enqueueDiff(.with { $0.gameSlug = "dedup"; $0.trigger = .import; $0.importRunId = run1 })
        let i2 = try await queue.enqueueDiff(.with { $0.gameSlug = "dedup"; $0.trigger = .import; $0.importRunId = run2 })
        XCTAssertNotEqual(i1.messageId, i2.messageId, "back-to-back imports both get a diff")
        let (code, _) = await statusOf { try await queue.enqueueDiff(.with { $0.gameSlug = "dedup"; $0.trigger = .import }) }
        XCTAssertEqual(code, .invalidArgument, "an import request names its run")
        // The queue checks what it is asked for: the game, and the run of that game.
        let (noGame, _) = await statusOf { try await queue.enqueueDiff(.with { $0.gameSlug = "nope"; $0.trigger = .manual }) }
        XCTAssertEqual(noGame, .notFound)
        let (madeUp, _) = await statusOf { try await queue.enqueueDiff(.with { $0.gameSlug = "dedup"; $0.trigger = .import; $0.importRunId = "run-made-up" }) }
        XCTAssertEqual(madeUp, .notFound)
        // It is internal: a call forwarded for an outside principal is refused, whatever it holds.
        var forwarded = Metadata()
        forwarded.set(ForwardedCaller.principalKey, "mallory")
        forwarded.set(ForwardedCaller.permissionsKey, "staging:admin,staging:write")
        let (outside, _) = await statusOf { try await queue.enqueueDiff(manual, options: CallOptions(metadata: forwarded)) }
        XCTAssertEqual(outside, .permissionDenied)
        await h.stop()
    }

    func testAWorkerThatKeepsFailingDeadLettersAndRedriveRecovers() async throws {
        let h = try await StagingHarness()
        let run = try await h.importGame("stuck", StagingHarness.cards(5))
        _ = try await h.waitForRun(run)
        _ = try await h.waitForDiff("stuck")
        // A busy lock is a wait, not a failure: someone holds the diff lock for a while.
        let side = try h.sideDoor()
        try await StagingHarness.plantLock(side, game: "stuck", holder: "wedged", expiresAt: Int64.max)
        let waiting = try await h.client.generateDiff(.with { $0.gameSlug = "stuck" })
        try await Task.sleep(for: .milliseconds(1_500))  // ~75 retry periods of 20 ms: three failed receives would dead-letter it
        var stats = try await h.client.getQueueStats(.init())
        XCTAssertEqual(stats.deadLetters, 0, "a request waiting for a busy lock was dead-lettered")
        XCTAssertEqual(stats.depth + stats.inFlight, 1)
        let beforeRelease = try await h.lastOffset()
        try await side.write { tx in _ = try tx.execute("DELETE FROM locks WHERE holder = 'wedged'") }
        let produced = try await h.waitForDiff("stuck", after: beforeRelease)
        XCTAssertEqual(produced.details["trigger"], "MANUAL")
        _ = waiting
        // A real failure (the diff cannot be stored) dead-letters after 3 receives.
        try await injectInsertFailure(side, table: "diffs", name: "fail_stuck_diffs", message: "injected storage failure",
                                      when: "NEW.game_slug = 'stuck'")
        let queued = try await h.client.generateDiff(.with { $0.gameSlug = "stuck" })
        XCTAssertEqual(queued.message, "Diff generation queued")
        XCTAssertNotEqual(queued.messageId, waiting.messageId, "asking again after a diff ran is a new request")
        try await eventually("the dead letter") {
            try await h.client.getQueueStats(.init()).deadLetters == 1
        }
        let letters = try await h.client.listDeadLetters(.init()).deadLetters
        XCTAssertEqual(letters.map(\.messageId), [queued.messageId])
        XCTAssertEqual(letters.first?.receiveCount, 3)
        XCTAssertEqual(letters.first?.request?.gameSlug, "stuck")
        try await removeInsertFailure(side, table: "diffs", name: "fail_stuck_diffs")
        let offset = try await h.lastOffset()
        let redriven = try await h.client.redriveDeadLetters(.init())
        XCTAssertEqual(redriven.redriven, 1)
        _ = try await h.waitForDiff("stuck", after: offset)
        stats = try await h.client.getQueueStats(.init())
        XCTAssertEqual(stats.deadLetters, 0)
        side.close()
        await h.stop()
    }

    /// An admin pauses the diff queue: requests are accepted and wait (none
    /// reaches a worker, none is retried towards the dead letters); resumed,
    /// they are produced. Pausing needs staging:admin, and names its author.
    func testAPausedQueueHoldsDiffRequestsUntilResumed() async throws {
        let h = try await StagingHarness()
        _ = try await h.waitForRun(try await h.importGame("held", StagingHarness.cards(3)))
        _ = try await h.waitForDiff("held")
        func caller(_ perms: String) -> CallOptions { StagingHarness.caller("ops-alice", permissions: perms) }
        let (refused, _) = await statusOf { _ = try await h.client.setDiffQueuePaused(.with { $0.paused = true }, options: caller("staging:write")) }
        XCTAssertEqual(refused, .permissionDenied)
        let paused = try await h.client.setDiffQueuePaused(.with { $0.paused = true }, options: caller("staging:admin"))
        XCTAssertTrue(paused.paused)
        XCTAssertEqual(paused.pausedBy, "ops-alice")
        XCTAssertGreaterThan(paused.pausedAtMs, 0)
        let offset = try await h.lastOffset()
        _ = try await h.client.createOverride(.with { $0.gameSlug = "held"; $0.entityType = "card"; $0.slug = "c1"; $0.fields = ["name": "Held"] })
        _ = try await h.client.generateDiff(.with { $0.gameSlug = "held" })
        try await Task.sleep(for: .milliseconds(500))  // 25 retry periods of 20 ms: time enough for a worker that ignored the pause
        let waiting = try await h.client.getQueueStats(.init())
        XCTAssertEqual(waiting.depth, 2, "both requests wait")
        XCTAssertEqual(waiting.inFlight + waiting.deadLetters, 0)
        let none = try await h.events("held", after: offset).filter { $0.type == "diff-change" }
        XCTAssertEqual(none, [], "no diff while paused")
        let resumed = try await h.client.setDiffQueuePaused(.with { $0.paused = false }, options: caller("staging:admin"))
        XCTAssertFalse(resumed.paused)
        _ = try await h.waitForDiff("held", after: offset)
        try await eventually("the queue to drain") {
            let s = try await h.client.getQueueStats(.init())
            return s.depth + s.inFlight == 0
        }
        await h.stop()
    }

    func testTheFastPathEqualsAFullRecompute() async throws {
        let h = try await StagingHarness()
        let run = try await h.importGame("fast", StagingHarness.cards(300))
        _ = try await h.waitForRun(run)
        _ = try await h.waitForDiff("fast")
        _ = try await h.client.deploy(.with { $0.gameSlug = "fast" })
        var offset = try await h.lastOffset()
        // Move a card to another expansion and rename another: two MANUAL fast-path diffs.
        _ = try await h.client.createOverride(.with { $0.gameSlug = "fast"; $0.entityType = "card"; $0.slug = "c7"; $0.fields = ["expansion": "exp-9"] })
        _ = try await h.client.createOverride(.with { $0.gameSlug = "fast"; $0.entityType = "card"; $0.slug = "c8"; $0.fields = ["name": "Renamed"] })
        try await eventually("both fast-path diffs") {
            try await h.events("fast", after: offset).filter { $0.type == "diff-change" }.count == 2
        }
        let entityChanges = try await h.events("fast", after: offset).filter { $0.type == "entity-change" }
        XCTAssertEqual(entityChanges.map { $0.details["slug"] ?? "" }, ["c7", "c8"])
        let patched = try await h.client.getDiff(.with { $0.gameSlug = "fast" })
        XCTAssertEqual(patched.trigger, .manual)
        XCTAssertEqual(patched.entries.map(\.slug), ["c7", "c8"])
        XCTAssertEqual(patched.entries.first?.fields.map { "\($0.field):\($0.oldValue)→\($0.newValue)" }, ["expansion:exp-1→exp-9"])
        XCTAssertEqual(patched.impact.first { $0.expansion == "exp-1" }.map { [$0.cardsBefore, $0.cardsAfter] }, [100, 99])
        XCTAssertEqual(patched.impact.first { $0.expansion == "exp-9" }.map { [$0.cardsBefore, $0.cardsAfter] }, [0, 1])
        offset = try await h.lastOffset()
        _ = try await h.client.generateDiff(.with { $0.gameSlug = "fast" })
        _ = try await h.waitForDiff("fast", after: offset)
        let full = try await h.client.getDiff(.with { $0.gameSlug = "fast" })
        XCTAssertEqual(full.entries, patched.entries)
        XCTAssertEqual(full.counts, patched.counts)
        XCTAssertEqual(full.impact, patched.impact)
        await h.stop()
    }

    func testDeployReportsProgressAndEmptiesTheDiff() async throws {
        let h = try await StagingHarness()
        let run = try await h.importGame("dep", StagingHarness.cards(4_500))
        _ = try await h.waitForRun(run)
        _ = try await h.waitForDiff("dep")
        let before = try await h.client.getDiff(.with { $0.gameSlug = "dep" })
        XCTAssertFalse(before.empty)
        let offset = try await h.lastOffset()
        let deployed = try await h.client.deploy(.with { $0.gameSlug = "dep" })
        XCTAssertEqual(deployed.upserted, 4_500)
        let statuses = try await h.events("dep", after: offset).filter { $0.type == "deploy-status" }.map { $0.details["state"] ?? "" }
        XCTAssertEqual(statuses, ["started", "running", "running", "running", "succeeded"])
        let after = try await h.client.getDiff(.with { $0.gameSlug = "dep" })
        XCTAssertTrue(after.empty)
        XCTAssertTrue(after.entries.isEmpty)
        XCTAssertTrue(after.impact.allSatisfy { $0.cardsBefore == $0.cardsAfter })
        // Removing from staging and deploying again removes from production.
        let beforeSecond = try await h.lastOffset()
        let second = try await h.importGame("dep", StagingHarness.cards(4_000))
        _ = try await h.waitForRun(second)
        _ = try await h.waitForDiff("dep", after: beforeSecond)
        let deployedAgain = try await h.client.deploy(.with { $0.gameSlug = "dep" })
        XCTAssertEqual(deployedAgain.deleted, 500)
        // While an import holds its lock, a deploy is refused (and the other way round).
        let side = try h.sideDoor()
        try await side.write { tx in
            _ = try tx.execute(
                "INSERT INTO locks (game_slug, kind, holder, since, expires_at) VALUES ('dep', 'import', 'run_busy', 0, ?)", [Int64.max])
        }
        let (code, message) = await statusOf { try await h.client.deploy(.with { $0.gameSlug = "dep" }) }
        XCTAssertEqual(code, .failedPrecondition)
        XCTAssertTrue(message.contains("run_busy"), message)
        side.close()
        await h.stop()
    }

    func testEventsArriveExactlyOnceAcrossAReconnect() async throws {
        let h = try await StagingHarness()
        let run = try await h.importGame("live", StagingHarness.cards(10))
        _ = try await h.waitForRun(run)
        let received = Collected<Int64>()
        let reconnects = Collected<String>()
        let watcher = Task {
            try await EventWatcher(channel: h.channel, game: "live", maxBackoff: .milliseconds(200))
                .run(after: 0, onReconnect: { reconnects.append($0) }) { received.append($0.offset) }
        }
        try await eventually("the first events") { received.all.count >= 3 }
        // The server goes away and comes back on the same port; events happen meanwhile.
        await h.server.shutdown(timeout: .seconds(1))
        h.server = WireServer(name: "staging", services: h.role.services, secret: StagingHarness.secret)
        _ = try h.server.start(port: h.port)
        let offset = try await h.lastOffset()
        for slug in ["c1", "c2", "c3"] {
            _ = try await h.client.createOverride(.with { $0.gameSlug = "live"; $0.entityType = "card"; $0.slug = slug; $0.fields = ["x": "y"] })
        }
        try await eventually("the three diffs") {
            try await h.events("live", after: offset).filter { $0.type == "diff-change" }.count == 3
        }
        let all = try await h.events("live").map(\.offset)
        try await eventually("every event") { received.all.count >= all.count }
        watcher.cancel()
        XCTAssertEqual(received.all, all, "every event once, in order")
        XCTAssertFalse(reconnects.all.isEmpty, "the watcher did reconnect")
        await h.stop()
    }
}

/// Behind the gateway's check, the service checks the forwarded caller's
/// permissions itself: deploying needs staging:deploy, whatever else it holds.
final class StagingPermissionTests: XCTestCase {
    func testEachKindOfCallNeedsItsOwnPermission() async throws {
        let h = try await StagingHarness()
        _ = try await h.waitForRun(try await h.importGame("perm", StagingHarness.cards(3)))
        _ = try await h.waitForDiff("perm")
        func options(_ perms: String) -> CallOptions { StagingHarness.caller("alice", permissions: perms) }
        let editor = options("staging:read,staging:write")
        _ = try await h.client.getDiff(.with { $0.gameSlug = "perm" }, options: editor)
        _ = try await h.client.createOverride(.with { $0.gameSlug = "perm"; $0.entityType = "card"; $0.slug = "c1"; $0.fields = ["name": "x"] }, options: editor)
        let (deploy, message) = await statusOf { _ = try await h.client.deploy(.with { $0.gameSlug = "perm" }, options: editor) }
        XCTAssertEqual(deploy, .permissionDenied)
        XCTAssertTrue(message.contains("staging:deploy"), message)
        let (redrive, _) = await statusOf { _ = try await h.client.redriveDeadLetters(.init(), options: editor) }
        XCTAssertEqual(redrive, .permissionDenied)
        let (write, _) = await statusOf {
            _ = try await h.client.createOverride(.with { $0.gameSlug = "perm"; $0.entityType = "card"; $0.slug = "c1"; $0.fields = ["name": "y"] },
                options: options("staging:read"))
        }
        XCTAssertEqual(write, .permissionDenied)
        try await h.waitUntilQuiet("perm")
        let deployed = try await h.client.deploy(.with { $0.gameSlug = "perm" }, options: options("staging:deploy"))
        // Every StagingService method names its permission: none is left open by omission.
        let unguarded = Croupier_Staging_V1_StagingService.Method.all.map(\.path).filter { StagingPermission.byMethod[$0] == nil }
        XCTAssertEqual(unguarded, [])
        XCTAssertEqual(deployed.upserted, 3)
        await h.stop()
    }
}

/// The operator's views: import runs, production, the queue's live
/// requests, and releasing a request a crashed worker left in flight.
final class StagingOperatorViewTests: XCTestCase {
    func testRunsProductionQueueAndRelease() async throws {
        let h = try await StagingHarness()
        let first = try await h.importGame("ops", StagingHarness.cards(3))
        _ = try await h.waitForRun(first)
        let second = try await h.importGame("ops", StagingHarness.cards(4))
        _ = try await h.waitForRun(second)
        // Newest first, paged.
        let page1 = try await h.client.listImportRuns(.with { $0.gameSlug = "ops"; $0.pageSize = 1 })
        XCTAssertEqual(page1.runs.map(\.importRunId), [second])
        let page2 = try await h.client.listImportRuns(.with { $0.gameSlug = "ops"; $0.pageSize = 1; $0.pageToken = page1.nextPageToken })
        XCTAssertEqual(page2.runs.map(\.importRunId), [first])
        XCTAssertTrue(page2.nextPageToken.isEmpty)
        let (unknown, _) = await statusOf { try await h.client.listImportRuns(.with { $0.gameSlug = "nope" }) }
        XCTAssertEqual(unknown, .notFound)
        // The diff of the last import names its run and message.
        let diff = try await h.waitForDiff("ops", after: try await h.events("ops").first { $0.details["import_run_id"] == first }?.offset ?? 0)
        XCTAssertEqual(diff.details["import_run_id"], second)
        XCTAssertFalse(diff.details["message_id"]?.isEmpty ?? true)

        // Production: empty before a deploy, the staging fields after.
        try await h.waitUntilQuiet("ops")
        let before = try await h.client.listProductionEntities(.with { $0.gameSlug = "ops" })
        XCTAssertEqual(before.entities.count, 0)
        _ = try await h.client.deploy(.with { $0.gameSlug = "ops" })
        let after = try await h.client.listProductionEntities(.with { $0.gameSlug = "ops"; $0.pageSize = 3 })
        XCTAssertEqual(after.entities.map(\.slug), ["c0", "c1", "c2"])
        XCTAssertEqual(after.entities.first?.fields["name"], "C0")
        let rest = try await h.client.listProductionEntities(.with { $0.gameSlug = "ops"; $0.pageToken = after.nextPageToken })
        XCTAssertEqual(rest.entities.map(\.slug), ["c3"])

        // A worker takes a request and dies with it (this test plays the worker, holding it for an hour).
        let side = try h.sideDoor()
        try await StagingHarness.plantLock(side, game: "ops", holder: "wedged", expiresAt: Int64.max)
        let queued = try await h.client.generateDiff(.with { $0.gameSlug = "ops" })
        var taken: [ReceivedMessage] = []
        try await eventually("the request in the crashed worker's hands") {
            taken = try await h.role.requests.queue.receive(max: 1, visibilityTimeoutMillis: 3_600_000)
            return !taken.isEmpty
        }
        XCTAssertEqual(taken.first?.id, queued.messageId)
        try await side.write { tx in _ = try tx.execute("DELETE FROM locks WHERE holder = 'wedged'") }
        let listed = try await h.client.listDiffRequests(.init()).requests
        XCTAssertEqual(listed.map(\.messageId), [queued.messageId])
        XCTAssertEqual(listed.first?.inFlight, true)
        XCTAssertEqual(listed.first?.request?.gameSlug, "ops")
        // The operator releases it: the game's diff runs now, not in an hour.
        let offset = try await h.lastOffset()
        _ = try await h.client.releaseDiffRequest(.with { $0.messageId = queued.messageId })
        let produced = try await h.waitForDiff("ops", after: offset)
        XCTAssertEqual(produced.details["message_id"], String(queued.messageId))
        let (again, _) = await statusOf { try await h.client.releaseDiffRequest(.with { $0.messageId = queued.messageId }) }
        XCTAssertEqual(again, .failedPrecondition)
        try await eventually("the queue to drain") { try await h.client.listDiffRequests(.init()).requests.isEmpty }
        side.close()
        await h.stop()
    }

    /// Every game, imported or made by hand, once, in slug order and paged; each with its latest run.
    func testGamesAreListedWithTheirLatestRun() async throws {
        let h = try await StagingHarness()
        let empty = try await h.client.listGames(.init())
        XCTAssertEqual(empty.games, [])
        for game in ["b-game", "a-game", "c-game"] { _ = try await h.waitForRun(try await h.importGame(game, StagingHarness.cards(2))) }
        let latest = try await h.importGame("a-game", StagingHarness.cards(3))
        _ = try await h.waitForRun(latest)
        _ = try await h.client.createEntity(.with {
            $0.gameSlug = "by-hand"
            $0.entity = .with { $0.entityType = "card"; $0.slug = "only"; $0.fields = ["name": "Only"] }
        })
        let page1 = try await h.client.listGames(.with { $0.pageSize = 2 })
        XCTAssertEqual(page1.games.map(\.gameSlug), ["a-game", "b-game"])
        XCTAssertEqual(page1.games.first?.latestRun?.importRunId, latest)
        XCTAssertEqual(page1.games.first?.latestRun?.entitiesMerged, 3)
        let page2 = try await h.client.listGames(.with { $0.pageSize = 2; $0.pageToken = page1.nextPageToken })
        XCTAssertEqual(page2.games.map(\.gameSlug), ["by-hand", "c-game"])
        XCTAssertNil(page2.games.first?.latestRun, "a game made by hand has no import run")
        XCTAssertEqual(page2.nextPageToken, "")
        let (tooMany, _) = await statusOf { try await h.client.listGames(.with { $0.pageSize = 1001 }) }
        XCTAssertEqual(tooMany, .invalidArgument)
        // The games are found by index probes, one per game, never by reading every entity: in SQLite's plan each next
        // slug is a correlated subquery that SEARCHes the index (a DISTINCT over the table would be one SEARCH through
        // every row, and no subquery), and no step SCANs the table.
        if !TestEngine.isPostgres {
            let side = try h.sideDoor()
            for table in ["staging_entities", "import_runs"] {
                let plan = try await side.read { db in
                    try db.query("EXPLAIN QUERY PLAN " + EntityRows.gameSlugsSQL(table), ["", 100]) { $0.string(3) }
                }
                XCTAssertFalse(plan.contains { $0.hasPrefix("SCAN \(table)") }, "\(table) read whole: \(plan)")
                XCTAssertTrue(plan.contains { $0.hasPrefix("SEARCH \(table)") }, "\(table) not probed: \(plan)")
                XCTAssertTrue(plan.contains { $0.hasPrefix("CORRELATED SCALAR SUBQUERY") }, "\(table) not probed per game: \(plan)")
            }
            side.close()
        }
        await h.stop()
    }
}

/// Every service: a storage failure reaches the client as INTERNAL with a
/// plain message and the correlation id, never SQL (the Wire server logs the
/// detail; `ServerCall.clientStatus`).
final class StagingSafeErrorTests: XCTestCase {
    func testAStorageFailureTellsTheClientNothingInternal() async throws {
        let h = try await StagingHarness()
        _ = try await h.waitForRun(try await h.importGame("fault", StagingHarness.cards(2)))
        let side = try h.sideDoor()
        try await injectInsertFailure(side, table: "overrides", name: "no_overrides", message: "injected disk fault")
        var metadata = Metadata()
        metadata.set("x-correlation-id", "corr-staging-fault")
        do {
            _ = try await h.client.createOverride(.with { $0.gameSlug = "fault"; $0.entityType = "card"; $0.slug = "c0"; $0.fields = ["name": "x"] },
                options: CallOptions(metadata: metadata))
            XCTFail("the write should fail")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .internal)
            for leak in ["SQLite", "INSERT", "overrides", "injected", "TRIGGER"] {
                XCTAssertFalse(e.message.contains(leak), "the client saw internal detail: \(e.message)")
            }
            XCTAssertTrue(e.message.contains("corr-staging-fault"), e.message)
        }
        side.close()
        await h.stop()
    }
}
