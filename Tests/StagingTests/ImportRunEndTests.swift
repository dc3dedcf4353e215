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
}
