import Foundation
import StagingService
import Storage
import Wire
import TestSupport
import XCTest

/// Imports: the durable upload, the merge, overrides, removals, locks, the merge limit.
final class ImportTests: XCTestCase {
    func testAnImportMergesAndItsDiffComesFromTheQueue() async throws {
        let h = try await StagingHarness()
        let entities = StagingHarness.cards(120) + [.with { $0.entityType = "expansion"; $0.slug = "exp-0"; $0.fields = ["name": "Zero"] }]
        let id = try await h.importGame("mtg", entities, batch: 50)
        let run = try await h.waitForRun(id)
        XCTAssertEqual(run.status, .succeeded)
        XCTAssertEqual([run.entitiesReceived, run.entitiesMerged, run.entitiesRemoved], [121, 121, 0])
        XCTAssertEqual(run.source, "test")
        XCTAssertGreaterThan(run.finishedAtMs, 0)
        let diffEvent = try await h.waitForDiff("mtg")
        XCTAssertEqual(diffEvent.details["trigger"], "IMPORT")
        XCTAssertEqual(diffEvent.details["added"], "121")
        let diff = try await h.client.getDiff(.with { $0.gameSlug = "mtg"; $0.pageSize = 10 })
        XCTAssertEqual(diff.trigger, .import)
        XCTAssertEqual(diff.importRunId, id)
        XCTAssertEqual(diff.counts.map(\.entityType), ["card", "expansion"])
        XCTAssertEqual(diff.counts.first?.added, 120)
        XCTAssertEqual(diff.entries.count, 10)
        XCTAssertFalse(diff.nextPageToken.isEmpty)
        XCTAssertEqual(diff.impact.map(\.expansion), ["exp-0", "exp-1", "exp-2"])
        XCTAssertEqual(diff.impact.map(\.cardsAfter), [40, 40, 40])
        XCTAssertEqual(diff.impact.map(\.cardsBefore), [0, 0, 0])
        // The import lock was taken and released, with a lock-change event each time.
        let lockEvents = try await h.events("mtg").filter { $0.type == "lock-change" && $0.details["kind"] == "import" }
        XCTAssertEqual(lockEvents.first?.details["state"], "acquired")
        XCTAssertEqual(lockEvents.last?.details["state"], "released")
        let locks = try await h.client.getLocks(.with { $0.gameSlug = "mtg" }).locks
        XCTAssertTrue(locks.isEmpty)
        await h.stop()
    }

    func testMergeProgressIsReportedOnTheLockAndAsThrottledEvents() async throws {
        var settings = StagingHarness.fast
        settings.progressIntervalMillis = 0
        let h = try await StagingHarness(settings: settings)
        let id = try await h.importGame("prog", StagingHarness.cards(9_000), batch: 3_000)
        _ = try await h.waitForRun(id)
        let progress = try await h.events("prog").filter { $0.type == "lock-change" && $0.details["state"] == "progress" }
        XCTAssertEqual(progress.map { $0.details["progress"] ?? "" }, ["received 3000", "received 6000", "received 9000",
                                                                      "merged 2000/9000", "merged 4000/9000", "merged 6000/9000",
                                                                      "merged 8000/9000", "merged 9000/9000"])
        await h.stop()
        // With the default interval (0.5 s) a quick import reports about once per 5,000 entities each phase.
        let quiet = try await StagingHarness("quiet")
        let run = try await quiet.importGame("prog", StagingHarness.cards(9_000), batch: 3_000)
        _ = try await quiet.waitForRun(run)
        let few = try await quiet.events("prog").filter { $0.details["state"] == "progress" }
        XCTAssertLessThanOrEqual(few.count, 4)
        await quiet.stop()
    }

    func testImagesAreCheckedAndStoredAsOverrides() async throws {
        var settings = StagingHarness.fast
        settings.maxImageBytes = 1024 * 1024
        let h = try await StagingHarness(settings: settings)
        let id = try await h.importGame("img", StagingHarness.cards(2))
        _ = try await h.waitForRun(id)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 1, count: 64)
        func upload(_ type: String, _ data: [UInt8]) async throws -> Croupier_Staging_V1_Entity {
            try await h.client.uploadImage(.with {
                $0.gameSlug = "img"
                $0.entityType = "card"
                $0.slug = "c1"
                $0.contentType = type
                $0.data = data
            })
        }
        let e = try await upload("image/png", png)
        XCTAssertTrue(e.fields["image"]?.hasPrefix("image:sha256:") ?? false)
        XCTAssertEqual(e.overrides["image"], e.fields["image"])
        var (code, _) = await statusOf { try await upload("image/png", Array("GIF89a....".utf8)) }
        XCTAssertEqual(code, .invalidArgument, "bytes of another type")
        (code, _) = await statusOf { try await upload("text/plain", png) }
        XCTAssertEqual(code, .invalidArgument, "not an image type")
        (code, _) = await statusOf { try await upload("image/png", png + Array(repeating: 0, count: 2 * 1024 * 1024)) }
        XCTAssertEqual(code, .invalidArgument, "over the size limit")
        (code, _) = await statusOf { try await upload("image/png", []) }
        XCTAssertEqual(code, .invalidArgument, "empty")
        await h.stop()
    }

    func testOverridesSurviveAReimportAndMissingEntitiesAreRemoved() async throws {
        let h = try await StagingHarness()
        let first = try await h.importGame("pkm", [
            StagingHarness.card("a", expansion: "base"), StagingHarness.card("b", expansion: "base"), StagingHarness.card("c", expansion: "jungle"),
        ])
        _ = try await h.waitForRun(first)
        _ = try await h.client.createOverride(.with {
            $0.gameSlug = "pkm"
            $0.entityType = "card"
            $0.slug = "a"
            $0.fields = ["name": "Pikachu (fixed)"]
        })
        _ = try await h.client.createEntity(.with {
            $0.gameSlug = "pkm"
            $0.entity = StagingHarness.card("promo-1", expansion: "promo")
        })
        let second = try await h.importGame("pkm", [
            StagingHarness.card("a", expansion: "base", ["name": "PIKACHU v2", "hp": "60"]), StagingHarness.card("b", expansion: "base"),
        ])
        let run = try await h.waitForRun(second)
        XCTAssertEqual(run.entitiesRemoved, 1)
        let a = try await h.client.getEntity(.with { $0.gameSlug = "pkm"; $0.entityType = "card"; $0.slug = "a" })
        XCTAssertEqual(a.fields["name"], "Pikachu (fixed)", "the override wins over the later import")
        XCTAssertEqual(a.fields["hp"], "60", "other imported fields still arrive")
        XCTAssertEqual(a.importedFields["name"], "PIKACHU v2")
        XCTAssertEqual(a.overrides, ["name": "Pikachu (fixed)"])
        let c = try await h.client.getEntity(.with { $0.gameSlug = "pkm"; $0.entityType = "card"; $0.slug = "c" })
        XCTAssertTrue(c.removed, "missing from the snapshot")
        let promo = try await h.client.getEntity(.with { $0.gameSlug = "pkm"; $0.entityType = "card"; $0.slug = "promo-1" })
        XCTAssertFalse(promo.removed, "manual entities are never removed by an import")
        XCTAssertEqual(promo.origin, "manual")
        let listed = try await h.client.listEntities(.with { $0.gameSlug = "pkm" }).entities.map(\.slug)
        XCTAssertEqual(listed, ["a", "b", "promo-1"])
        let all = try await h.client.listEntities(.with { $0.gameSlug = "pkm"; $0.includeRemoved = true; $0.pageSize = 2 })
        XCTAssertEqual(all.entities.map(\.slug), ["a", "b"])
        XCTAssertFalse(all.nextPageToken.isEmpty)
        await h.stop()
    }

    func testOneImportPerGameAndALeaseThatExpiresFreesTheGame() async throws {
        var settings = StagingHarness.fast
        settings.leaseMillis = 400
        let h = try await StagingHarness(settings: settings)
        // A holder that died: its lock row stays until the lease runs out.
        let side = try h.sideDoor()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await side.write { tx in
            _ = try tx.execute(
                "INSERT INTO locks (game_slug, kind, holder, since, expires_at) VALUES ('ygo', 'import', 'run_dead', ?, ?)", [now, now + 400])
        }
        let (code, message) = await statusOf { try await h.importGame("ygo", StagingHarness.cards(3)) }
        XCTAssertEqual(code, .failedPrecondition)
        XCTAssertTrue(message.contains("run_dead"), message)
        try await Task.sleep(for: .milliseconds(500))
        let id = try await h.importGame("ygo", StagingHarness.cards(3))
        let run = try await h.waitForRun(id)
        XCTAssertEqual(run.status, .succeeded)
        side.close()
        await h.stop()
    }

    func testHeartbeatsKeepALiveHoldersLeaseAcrossManyLeases() async throws {
        var settings = StagingHarness.fast
        settings.leaseMillis = 300
        let h = try await StagingHarness(settings: settings)
        let expiries = Collected<Int64>()
        let refusals = Collected<StatusCode>()
        // An upload that stays open for more than four leases: its lock must stay held all along.
        let id = try await h.client.importGame { w in
            try await w.write(.with { $0.start = .with { $0.gameSlug = "slow" } })
            for _ in 0..<4 {
                try await Task.sleep(for: .milliseconds(350))
                if let lock = try await h.client.getLocks(.with { $0.gameSlug = "slow" }).locks.first { expiries.append(lock.expiresAtMs) }
                refusals.append(await statusOf { try await h.importGame("slow", StagingHarness.cards(1)) }.0)
            }
            try await w.write(.with { $0.batch = .with { $0.entities = StagingHarness.cards(10) } })
        }.importRunId
        XCTAssertEqual(expiries.all.count, 4, "the lock was there at every look")
        XCTAssertEqual(expiries.all, expiries.all.sorted(), "renewed, never shortened")
        XCTAssertGreaterThan(Set(expiries.all).count, 1, "renewed by heartbeats")
        XCTAssertEqual(refusals.all, Array(repeating: .failedPrecondition, count: 4))
        let run = try await h.waitForRun(id)
        XCTAssertEqual(run.status, .succeeded)
        await h.stop()
    }

    func testAGracefulStopMidMergeResumesTheRunAtTheNextStart() async throws {
        let h = try await StagingHarness()
        let id = try await h.importGame("stop", StagingHarness.cards(40_000), batch: 5_000)
        try await eventually("the merge to be under way") {
            let r = try await h.run(id)
            return r.status == .running && r.entitiesMerged > 0
        }
        await h.stop()
        let side = try h.sideDoor()
        let status = try await side.read { db in
            try db.queryFirst("SELECT status FROM import_runs WHERE run_id = ?", [id]) { $0.string(0) }
        }
        side.close()
        XCTAssertEqual(status, "RUNNING", "a stop is not a failure")
        let restarted = try await StagingHarness("restart", directory: h.directory)
        let run = try await restarted.waitForRun(id)
        XCTAssertEqual(run.status, .succeeded)
        XCTAssertEqual(run.entitiesMerged, 40_000)
        await restarted.stop()
    }

    func testAtMostTwoMergesRunAtOnce() async throws {
        let h = try await StagingHarness()
        let games = ["g1", "g2", "g3", "g4", "g5"]
        let side = try h.sideDoor()
        // Watch every run's status from the start, while five uploads go in at once.
        let watcher = Task { () -> (maxRunning: Int, queuedWhileFull: Bool) in
            var maxRunning = 0
            var queuedWhileFull = false
            while !Task.isCancelled {
                let statuses = try await side.read { db in try db.query("SELECT status FROM import_runs") { $0.string(0) } }
                let running = statuses.filter { $0 == "RUNNING" }.count
                maxRunning = max(maxRunning, running)
                if running == 2 && statuses.contains("QUEUED") { queuedWhileFull = true }
                if statuses.count == games.count && statuses.allSatisfy({ $0 == "SUCCEEDED" || $0 == "FAILED" }) { break }
                try await Task.sleep(for: .milliseconds(1))
            }
            return (maxRunning, queuedWhileFull)
        }
        let runs = try await withThrowingTaskGroup(of: String.self) { group in
            for g in games { group.addTask { try await h.importGame(g, StagingHarness.cards(15_000, prefix: g), batch: 5_000) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let observed = try await watcher.value
        XCTAssertLessThanOrEqual(observed.maxRunning, 2)
        XCTAssertTrue(observed.queuedWhileFull, "the others waited their turn as queued")
        for r in runs { let s = try await h.run(r).status; XCTAssertEqual(s, .succeeded) }
        side.close()
        await h.stop()
    }

    func testABrokenOffUploadFailsCleanlyAndBadInputIsRefused() async throws {
        let h = try await StagingHarness()
        struct ClientGaveUp: Error {}
        let side = try h.sideDoor()
        do {
            _ = try await h.client.importGame { w in
                try await w.write(.with { $0.start = .with { $0.gameSlug = "broken" } })
                try await w.write(.with { $0.batch = .with { $0.entities = StagingHarness.cards(50) } })
                // Give up midway, once the service has stored the first batch.
                while try await side.read({ db in
                    try db.queryFirst("SELECT entities_received FROM import_runs WHERE game_slug = 'broken'") { $0.int(0) } ?? 0
                }) < 50 {
                    try await Task.sleep(for: .milliseconds(5))
                }
                throw ClientGaveUp()
            }
            XCTFail("the import should not succeed")
        } catch {}
        var status = ""
        try await eventually("the run to fail") {
            status = try await side.read { db in
                try db.queryFirst("SELECT status FROM import_runs WHERE game_slug = 'broken'") { $0.string(0) } ?? ""
            }
            return status == "FAILED"
        }
        let (staged, uploaded) = try await side.read { db in
            (try db.queryFirst("SELECT count(*) FROM staging_entities WHERE game_slug = 'broken'") { $0.int(0) } ?? -1,
             try db.queryFirst("SELECT count(*) FROM import_data") { $0.int(0) } ?? -1)
        }
        XCTAssertEqual([staged, uploaded], [0, 0], "no partial merge, no leftover upload")
        let locks = try await h.client.getLocks(.with { $0.gameSlug = "broken" }).locks
        XCTAssertTrue(locks.isEmpty)
        side.close()

        // Bad input, each refused with its code.
        func importCode(_ parts: [Croupier_Staging_V1_ImportGameRequest]) async -> StatusCode {
            let (code, _) = await statusOf {
                try await h.client.importGame(requests: { w in for p in parts { try await w.write(p) } })
            }
            return code
        }
        let start: Croupier_Staging_V1_ImportGameRequest = .with { $0.start = .with { $0.gameSlug = "bad" } }
        var c = await importCode([.with { $0.batch = .init() }])
        XCTAssertEqual(c, .invalidArgument, "no start")
        c = await importCode([.with { $0.start = .with { $0.gameSlug = "" } }])
        XCTAssertEqual(c, .invalidArgument, "empty game slug")
        c = await importCode([start, .with { $0.batch = .with { $0.entities = [.with { $0.entityType = "planet"; $0.slug = "x" }] } }])
        XCTAssertEqual(c, .invalidArgument, "unknown entity type")
        c = await importCode([start, .with { $0.batch = .with { $0.entities = [.with { $0.entityType = "card"; $0.slug = "" }] } }])
        XCTAssertEqual(c, .invalidArgument, "empty slug")
        let huge = String(repeating: "x", count: 20_000)
        c = await importCode([start, .with { $0.batch = .with { $0.entities = [StagingHarness.card("big", expansion: "e", ["text": huge])] } }])
        XCTAssertEqual(c, .invalidArgument, "oversized field")
        var (code, _) = await statusOf { try await h.client.getEntity(.with { $0.gameSlug = "nope"; $0.entityType = "card"; $0.slug = "x" }) }
        XCTAssertEqual(code, .notFound)
        (code, _) = await statusOf { try await h.client.listEntities(.with { $0.gameSlug = "nope" }) }
        XCTAssertEqual(code, .notFound)
        (code, _) = await statusOf { try await h.client.generateDiff(.with { $0.gameSlug = "nope" }) }
        XCTAssertEqual(code, .notFound)
        (code, _) = await statusOf {
            try await h.client.createOverride(.with { $0.gameSlug = "broken"; $0.entityType = "card"; $0.slug = "c1"; $0.fields = ["a": "b"] })
        }
        XCTAssertEqual(code, .notFound, "unknown entity")
        await h.stop()
    }
}

/// Seed 000 R2-#1: an operator's override made while a re-import merges
/// must win, wherever the merge is when it commits.
final class OverrideDuringMergeTests: XCTestCase {
    func testAnOverrideMadeDuringA60kEntityMergeSurvivesIt() async throws {
        let h = try await StagingHarness()
        let n = 60_000
        _ = try await h.waitForRun(try await h.importGame("big", StagingHarness.cards(n), batch: 5_000))
        // The re-import changes every name.
        let second = try await h.importGame(
            "big", (0..<n).map { StagingHarness.card("c\($0)", expansion: "exp-\($0 % 3)", ["name": "V2-\($0)"]) }, batch: 5_000)
        var run = try await h.run(second)
        try await eventually("the merge to start") {
            run = try await h.run(second)
            return run.status == .running || run.status == .succeeded
        }
        // Late cards (their pages come last) and one in the middle, while the merge runs.
        let targets = ["c\(n - 1)", "c\(n - 2)", "c\(n / 2)"]
        for slug in targets {
            _ = try await h.client.createOverride(.with {
                $0.gameSlug = "big"
                $0.entityType = "card"
                $0.slug = slug
                $0.fields = ["name": "FIXED \(slug)"]
            })
        }
        let mergedWhenOverridden = try await h.run(second).entitiesMerged
        XCTAssertLessThan(mergedWhenOverridden, Int64(n), "the overrides must land before the merge reaches the last cards")
        run = try await h.waitForRun(second)
        XCTAssertEqual(run.status, .succeeded)
        for slug in targets {
            let e = try await h.client.getEntity(.with { $0.gameSlug = "big"; $0.entityType = "card"; $0.slug = slug })
            XCTAssertEqual(e.fields["name"], "FIXED \(slug)", "the override made during the merge was overwritten by the import")
            XCTAssertTrue(e.importedFields["name"]?.hasPrefix("V2-") ?? false, "the import itself still landed: \(e.importedFields)")
        }
        let other = try await h.client.getEntity(.with { $0.gameSlug = "big"; $0.entityType = "card"; $0.slug = "c7" })
        XCTAssertEqual(other.fields["name"], "V2-7")
        await h.stop()
    }
}

/// Seed 000's admin UI trusts lock-change events: each says something true.
final class LockTruthTests: XCTestCase {
    func testAcquiredOncePerRunProgressByCountAndExpiryOfADeadHolder() async throws {
        var settings = StagingHarness.fast
        settings.progressIntervalMillis = 600_000  // only the count can trigger a report
        let h = try await StagingHarness(settings: settings)
        let run = try await h.importGame("locks", StagingHarness.cards(20_000), batch: 2_500)
        _ = try await h.waitForRun(run)
        let mine = try await h.events("locks").filter { $0.type == "lock-change" && $0.details["holder"] == run }
        let states = mine.map { $0.details["state"] ?? "" }
        XCTAssertEqual(states.filter { $0 == "acquired" }.count, 1, "acquired once per import run: \(states)")
        XCTAssertEqual(states.first, "acquired")
        XCTAssertEqual(states.last, "released")
        let progress = mine.compactMap { $0.details["state"] == "progress" ? $0.details["progress"] : nil }
        XCTAssertTrue(progress.contains("received 5000"), "the upload reports progress: \(progress)")
        XCTAssertGreaterThanOrEqual(progress.filter { $0.hasPrefix("merged ") }.count, 3, "a 20k merge shows progress by count: \(progress)")

        // A holder that died: its lease runs out and says so.
        try await h.waitUntilQuiet("locks")
        let side = try h.sideDoor()
        let soon = Int64(Date().timeIntervalSince1970 * 1000) + 300
        try await StagingHarness.plantLock(side, game: "locks", holder: "dead-worker", expiresAt: soon)
        try await eventually("the expired event") {
            try await h.events("locks").contains { $0.type == "lock-change" && $0.details["holder"] == "dead-worker" && $0.details["state"] == "expired" }
        }
        let locks = try await h.client.getLocks(.with { $0.gameSlug = "locks" })
        XCTAssertTrue(locks.locks.isEmpty, "\(locks.locks)")
        let (unknown, _) = await statusOf { try await h.client.getLocks(.with { $0.gameSlug = "no-such-game" }) }
        XCTAssertEqual(unknown, .notFound)
        side.close()
        await h.stop()
    }
}
