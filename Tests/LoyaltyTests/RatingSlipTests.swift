import Foundation
import LoyaltyService
import Storage
import Wire
import TestSupport
import XCTest

/// Slip completion and recovery over a real socket against a real database file.
final class RatingSlipTests: XCTestCase {
    /// A second connection to the service's database file, standing in for
    /// faults and legacy data the service itself never produces.
    func sideDoor(_ h: LoyaltyHarness) throws -> Database {
        try Database(path: h.store.database.path, owner: "loyalty", migrations: LoyaltyStore.migrations)
    }

    func testCompletionClosesTheSlipAndAccruesOnceAndReplays() async throws {
        let h = try LoyaltyHarness()
        let slip = try await h.startSlip("p1", id: "slip-1")
        XCTAssertEqual(slip.status, .open)
        XCTAssertEqual(slip.startedAtMs, LoyaltyHarness.start)
        h.clock.advance(seconds: 3600)
        let first = try await h.complete("slip-1")
        XCTAssertEqual(first.slip?.status, .closed)
        XCTAssertEqual(first.slip?.durationSeconds, 3600, "the clock from start to completion")
        let a = try XCTUnwrap(first.accrual)
        XCTAssertEqual(a.points, 30)  // 25 × 60 × 1 h × 2 % × 1
        XCTAssertEqual([a.balanceBefore, a.balanceAfter, a.lifetimePoints], [0, 30, 30])
        XCTAssertEqual(a.tierBefore, .bronze)
        XCTAssertEqual(a.tierAfter, .bronze)
        XCTAssertEqual(a.tierProgress, 3)
        XCTAssertFalse(a.replay)

        h.clock.advance(seconds: 600)
        let again = try await h.complete("slip-1", seconds: 99_999)
        XCTAssertTrue(try XCTUnwrap(again.accrual).replay)
        XCTAssertEqual(again.accrual?.ledgerEntryId, a.ledgerEntryId)
        XCTAssertEqual(again.accrual?.points, 30, "the first result, whatever the retry says")
        XCTAssertEqual(again.slip?.durationSeconds, 3600)
        let ledger = try await h.ledger("p1")
        XCTAssertEqual(ledger.count, 1)
        XCTAssertEqual(ledger.first?.transactionType, .gameplay)
        XCTAssertEqual(ledger.first?.ratingSlipId, "slip-1")
        XCTAssertEqual(ledger.first?.visitId, "visit-p1")
        XCTAssertEqual(ledger.first?.idempotencyKey, "slip-1")
        let balance = try await h.balance("p1").balance
        XCTAssertEqual(balance, 30)
        XCTAssertTrue(h.log.contains { $0.contains("\"loyalty_accrual_completed\"") })
        XCTAssertTrue(h.log.contains { $0.contains("\"loyalty_idempotency_hit\"") })
        await h.stop()
    }

    func testCompletionIsAllOrNothing() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.startSlip("p1", id: "slip-a")
        // The accrual step fails (as seed 001's "loyalty fails after the slip closed").
        let side = try sideDoor(h)
        try await injectInsertFailure(side, table: "loyalty_ledger", name: "fail_accrual", message: "accrual unavailable")
        h.clock.advance(seconds: 3600)
        let (code, _) = await statusOf { try await h.complete("slip-a") }
        XCTAssertEqual(code, .unavailable)
        // Nothing changed: the slip is still open, no entry, no balance.
        let slipStatus = try await side.read { db in
            try db.queryFirst("SELECT status FROM rating_slips WHERE slip_id = 'slip-a'") { $0.string(0) }
        }
        XCTAssertEqual(slipStatus, "OPEN")
        let ledgerCount = try await h.ledger("p1").count
        XCTAssertEqual(ledgerCount, 0)
        let account = try await h.balance("p1")
        XCTAssertEqual(account.balance, 0)
        XCTAssertEqual(account.updatedAtMs, 0, "no account row was written")

        try await removeInsertFailure(side, table: "loyalty_ledger", name: "fail_accrual")
        side.close()
        let done = try await h.complete("slip-a")
        XCTAssertEqual(done.accrual?.points, 30)
        XCTAssertEqual(done.accrual?.replay, false)
        await h.stop()
    }

    func testRecoveryOfAPartialCompletionWritesOneEntry() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.startSlip("p1", id: "legacy-1")
        // A slip closed without its accrual, as the old two-step flow left them.
        let side = try sideDoor(h)
        try await side.write { tx in
            _ = try tx.execute(
                "UPDATE rating_slips SET status = 'CLOSED', ended_at = started_at + 7200000, duration_seconds = 7200 WHERE slip_id = 'legacy-1'")
        }
        side.close()
        var (code, message) = await statusOf { try await h.complete("legacy-1") }
        XCTAssertEqual(code, .failedPrecondition)
        XCTAssertTrue(message.contains("RecoverSlipLoyalty"), message)
        // Recovery is an admin action.
        (code, _) = await statusOf {
            try await h.client.recoverSlipLoyalty(.with { $0.slipId = "legacy-1" }, options: LoyaltyHarness.pit)
        }
        XCTAssertEqual(code, .permissionDenied)

        let first = try await h.client.recoverSlipLoyalty(.with { $0.slipId = "legacy-1" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(first.accrual?.points, 60, "two hours from the stored slip")
        XCTAssertEqual(first.accrual?.replay, false)
        let second = try await h.client.recoverSlipLoyalty(.with { $0.slipId = "legacy-1" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(second.accrual?.replay, true)
        XCTAssertEqual(second.accrual?.ledgerEntryId, first.accrual?.ledgerEntryId)
        let ledgerCount = try await h.ledger("p1").count
        XCTAssertEqual(ledgerCount, 1)
        // Completing it now returns the recovered entry.
        let replay = try await h.complete("legacy-1")
        XCTAssertEqual(replay.accrual?.replay, true)
        XCTAssertTrue(h.log.contains { $0.contains("\"loyalty_recovery_completed\"") })

        // An open slip is refused; an unknown one is not found.
        _ = try await h.startSlip("p2", id: "open-1")
        (code, _) = await statusOf {
            try await h.client.recoverSlipLoyalty(.with { $0.slipId = "open-1" }, options: LoyaltyHarness.admin)
        }
        XCTAssertEqual(code, .failedPrecondition)
        (code, _) = await statusOf {
            try await h.client.recoverSlipLoyalty(.with { $0.slipId = "nope" }, options: LoyaltyHarness.admin)
        }
        XCTAssertEqual(code, .notFound)
        await h.stop()
    }

    func testStartIsIdempotentWithACallerChosenID() async throws {
        let h = try LoyaltyHarness()
        let a = try await h.startSlip("p1", id: "slip-x")
        let again = try await h.client.startRatingSlip(.with {
            $0.slipId = "slip-x"
            $0.playerId = "p1"
            $0.visitId = "visit-p1"
            $0.tableId = "bj-7"
            $0.gameSettings = LoyaltyHarness.table
            $0.averageBet = 25
        }, options: LoyaltyHarness.pit)
        XCTAssertTrue(again.replay)
        XCTAssertEqual(again.slip?.startedAtMs, a.startedAtMs)
        let (code, _) = await statusOf { try await h.startSlip("p2", id: "slip-x") }
        XCTAssertEqual(code, .alreadyExists)
        let generated = try await h.startSlip("p1")
        XCTAssertTrue(generated.slipId.hasPrefix("slip_"))
        await h.stop()
    }

    func testSlipInputIsValidated() async throws {
        let h = try LoyaltyHarness()
        func start(_ edit: (inout Croupier_Loyalty_V1_StartRatingSlipRequest) -> Void, as options: CallOptions = LoyaltyHarness.pit)
            async -> StatusCode
        {
            var r = Croupier_Loyalty_V1_StartRatingSlipRequest.with {
                $0.playerId = "p1"
                $0.tableId = "t1"
                $0.gameSettings = LoyaltyHarness.table
                $0.averageBet = 10
            }
            edit(&r)
            let request = r
            return await statusOf { try await h.client.startRatingSlip(request, options: options) }.0
        }
        let cases: [(String, (inout Croupier_Loyalty_V1_StartRatingSlipRequest) -> Void)] = [
            ("no player", { $0.playerId = "" }),
            ("no table", { $0.tableId = "" }),
            ("no settings", { $0.gameSettings = nil }),
            ("zero edge", { $0.gameSettings?.houseEdgePercent = 0 }),
            ("edge over 100", { $0.gameSettings?.houseEdgePercent = 101 }),
            ("NaN decisions", { $0.gameSettings?.decisionsPerHour = .nan }),
            ("negative rate", { $0.gameSettings?.pointsPerTheoreticalWin = -1 }),
            ("negative bet", { $0.averageBet = -5 }),
            ("infinite bet", { $0.averageBet = .infinity }),
            ("bad slip id", { $0.slipId = "has space" }),
            ("control chars", { $0.playerId = "p\u{1}" }),
        ]
        for (name, edit) in cases {
            let code = await start(edit)
            XCTAssertEqual(code, .invalidArgument, name)
        }
        let noPermission = await start({ _ in }, as: LoyaltyHarness.staff("s1"))
        XCTAssertEqual(noPermission, .permissionDenied)
        let anonymous = await start({ _ in }, as: CallOptions())
        XCTAssertEqual(anonymous, .unauthenticated)
        var (code, _) = await statusOf {
            try await h.client.completeRatingSlip(.with {
                $0.slipId = "nope"
            }, options: LoyaltyHarness.pit)
        }
        XCTAssertEqual(code, .notFound)
        _ = try await h.startSlip("p1", id: "s-1")
        (code, _) = await statusOf {
            try await h.client.completeRatingSlip(.with {
                $0.slipId = "s-1"
                $0.durationSeconds = -1
            }, options: LoyaltyHarness.pit)
        }
        XCTAssertEqual(code, .invalidArgument)
        await h.stop()
    }
}
