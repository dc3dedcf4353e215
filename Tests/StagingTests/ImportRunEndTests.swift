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
        let (run, receiver, sweeper) = try await h.uploadWhoseLeaseLapsed(game: "given-up")
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
        let (run, _, late) = try await h.uploadWhoseLeaseLapsed(game: "raced")
        try await late.complete(runID: run, game: "raced")  // its lease had run out as this clock sees it: taken back
        let abandoned = try await late.abandonIfOrphaned(run)
        XCTAssertFalse(abandoned, "a completed upload was failed")
        let merged = try await h.waitForRun(run)
        XCTAssertEqual(merged.status, .succeeded, merged.error)
        XCTAssertEqual(merged.entitiesMerged, 5)
        await h.stop()
    }

    /// An acknowledged run whose lease ran out while it waited for a merge slot
    /// (its keeper stalled) is not failed by the game's next import: that
    /// import is refused until the run has merged. An upload whose lease ran
    /// out is over, and the next import starts. Before, the next import
    /// failed the queued run too, and an acknowledged import never merged.
    func testTheNextImportWaitsForAQueuedRunWhoseLeaseRanOut() async throws {
        let directory = try makeTemporaryDirectory("staging-queued-lapse")
        let clock = ManualClock(1_800_000_000_000)
        // A role that is never started: no importer merges the queued run, no keeper renews a lease.
        let role = try StagingRole(path: TestEngine.location("staging", in: directory), settings: StagingHarness.fast, clock: clock, log: { _ in })
        let queued = try await role.imports.begin(game: "waits", source: "test")
        try await role.imports.receive(runID: queued, game: "waits", firstSeq: 1, StagingHarness.cards(5))
        try await role.imports.complete(runID: queued, game: "waits")
        let uploading = try await role.imports.begin(game: "gone", source: "test")
        clock.advance(seconds: 60)
        let (code, message) = await statusOf { _ = try await role.imports.begin(game: "waits", source: "test") }
        XCTAssertEqual(code, .failedPrecondition)
        XCTAssertTrue(message.contains(queued), message)
        let stillQueued = try await role.imports.run(queued).status
        XCTAssertEqual(stillQueued, .queued)
        let next = try await role.imports.begin(game: "gone", source: "test")
        XCTAssertNotEqual(next, uploading)
        let abandoned = try await role.imports.run(uploading)
        XCTAssertEqual(abandoned.status, .failed)
        XCTAssertEqual(abandoned.error, "abandoned: its import lock expired")
        role.stop()
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
    /// An upload under way (5 entities received) whose lease has lapsed as
    /// `late` sees it, which finds it orphaned: `receiver`'s clock is an
    /// hour on and `late`'s two, so the role's own sweep, on the real
    /// clock, sees the lease live and leaves the run to the test.
    func uploadWhoseLeaseLapsed(game: String) async throws -> (run: String, receiver: ImportStore, late: ImportStore) {
        let (receiver, late) = (imports(clockAhead: .seconds(3600)), imports(clockAhead: .seconds(7200)))
        let run = try await receiver.begin(game: game, source: "test")
        try await receiver.receive(runID: run, game: game, firstSeq: 1, StagingHarness.cards(5))
        let orphans = try await late.orphanedUploads()
        XCTAssertEqual(orphans, [run])
        return (run, receiver, late)
    }

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
