import Storage
import TestSupport
import XCTest

@testable import StagingService

/// A run that ended stays ended. Under load, a queued run's lease could run
/// out and the run be abandoned (FAILED) while the importer was about to
/// merge it; the merge used to set it back to RUNNING (seen once on
/// PostgreSQL in testAtMostTwoMergesRunAtOnce: a run the watcher had seen
/// final was RUNNING afterwards).
final class ImportRunEndTests: XCTestCase {
    func testAnAbandonedRunIsNeverMergedAgain() async throws {
        let h = try await StagingHarness()
        let run = try await h.role.imports.begin(game: "ended-game", source: "test")
        try await h.role.imports.abandon(runID: run, reason: "abandoned: its import lock expired")
        let started = try await h.role.imports.startMerge(runID: run, game: "ended-game")
        XCTAssertFalse(started, "an abandoned run was merged")
        let status = try await h.run(run).status
        XCTAssertEqual(status, .failed)
        // Its lock was not taken again: the next import of the game starts.
        let next = try await h.role.imports.begin(game: "ended-game", source: "test")
        XCTAssertNotEqual(next, run)
        await h.stop()
    }

    /// A run given up while its upload was still coming (its lease ran out
    /// under a stalled heartbeat, and the sweep found it orphaned) refuses
    /// the rest of the upload ABORTED and is never acknowledged. Seen in
    /// MultiHostTests under load: an upload was acknowledged, its run FAILED
    /// ("its receiver stopped"), and the import was lost.
    func testAnUploadGivenUpMeanwhileIsRefusedNeverAcknowledged() async throws {
        let h = try await StagingHarness()
        // The receiver's lease lapses only as the sweeper sees it (its clock is an hour on), not as the role's own sweep does.
        let (receiver, sweeper) = (h.imports(clockAhead: .seconds(3600)), h.imports(clockAhead: .seconds(7200)))
        let run = try await receiver.begin(game: "given-up", source: "test")
        try await receiver.receive(runID: run, game: "given-up", firstSeq: 1, StagingHarness.cards(5))
        let orphans = try await sweeper.orphanedUploads()
        XCTAssertEqual(orphans, [run])
        let abandoned = try await sweeper.abandonIfOrphaned(run)
        XCTAssertTrue(abandoned)
        let (more, _) = await statusOf { try await receiver.receive(runID: run, game: "given-up", firstSeq: 6, StagingHarness.cards(5)) }
        XCTAssertEqual(more, .aborted)
        let (completed, message) = await statusOf { try await receiver.complete(runID: run, game: "given-up") }
        XCTAssertEqual(completed, .aborted)
        XCTAssertTrue(message.contains("its receiver stopped"), message)
        let status = try await h.run(run).status
        XCTAssertEqual(status, .failed)
        let rows = try await h.role.database.read { db in
            try db.queryFirst("SELECT count(*) FROM import_data WHERE run_id = ?", [run], { $0.int64(0) })
        }
        XCTAssertEqual(rows, 0, "nothing of the given-up upload is kept")
        await h.stop()
    }

    /// The sweep reads a run as orphaned, then its upload completes (taking
    /// its lapsed lease back) and is acknowledged: the sweep's write checks
    /// again and leaves the run alone, and it merges. Before, the sweep
    /// failed it, QUEUED as it was, and an acknowledged import was lost.
    func testAnUploadThatCompletesAfterTheSweepReadItIsMerged() async throws {
        let h = try await StagingHarness()
        let (receiver, late) = (h.imports(clockAhead: .seconds(3600)), h.imports(clockAhead: .seconds(7200)))
        let run = try await receiver.begin(game: "raced", source: "test")
        try await receiver.receive(runID: run, game: "raced", firstSeq: 1, StagingHarness.cards(5))
        let orphans = try await late.orphanedUploads()
        XCTAssertEqual(orphans, [run])
        try await late.complete(runID: run, game: "raced")  // its lease had run out as this clock sees it: taken back
        let abandoned = try await late.abandonIfOrphaned(run)
        XCTAssertFalse(abandoned, "a completed upload was failed")
        let merged = try await h.waitForRun(run)
        XCTAssertEqual(merged.status, .succeeded, merged.error)
        XCTAssertEqual(merged.entitiesMerged, 5)
        await h.stop()
    }

    /// The lease keeper lets go of a lock that is no longer its holder's (a
    /// run merged by another replica): it is not renewed in vain forever.
    func testTheLeaseKeeperLetsGoOfALockItNoLongerHolds() async throws {
        var settings = StagingHarness.fast
        settings.leaseMillis = 300
        let h = try await StagingHarness(settings: settings)
        h.role.leases.hold(.init(game: "elsewhere", kind: .importLock, holder: "run_merged_elsewhere"))
        try await eventually("the keeper to let go") { h.role.leases.heldCount == 0 }
        await h.stop()
    }
}

extension StagingHarness {
    /// The role's import store, on a clock `ahead` of the real one.
    func imports(clockAhead ahead: Duration) -> ImportStore {
        struct Ahead: StorageClock {
            let millis: Int64
            func nowMillis() -> Int64 { SystemClock().nowMillis() + millis }
        }
        let clock = Ahead(millis: ahead.components.seconds * 1000)
        let locks = LockStore(database: role.database, events: role.events, clock: clock, leaseMillis: role.settings.leaseMillis)
        return ImportStore(database: role.database, locks: locks, clock: clock)
    }
}
