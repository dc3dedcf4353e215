import Foundation
import LoyaltyService
import Storage
import TestSupport
import Wire
import XCTest

/// Seed 001's runbooks: read-only lookups, the canonical failure line, and
/// errors that tell a client nothing about the storage behind them.
final class RunbookTests: XCTestCase {
    /// A second connection to the database file, for faults the service never produces itself.
    func sideDoor(_ h: LoyaltyHarness) throws -> Database {
        try Database(path: h.store.database.path, owner: "loyalty", migrations: LoyaltyStore.migrations)
    }

    func testStorageFailuresReachClientsAsPlainMessagesAndTheLogKeepsTheDetail() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 10, reason: "A reward before the fault")
        let side = try sideDoor(h)
        try await injectInsertFailure(side, table: "loyalty_ledger", name: "no_ledger", message: "injected disk fault")
        do {
            _ = try await h.client.manualReward(.with {
                $0.playerId = "p1"; $0.points = 5; $0.reason = "A reward during the fault"; $0.staffId = "staff-1"
            }, options: LoyaltyHarness.staff("staff-1", correlation: "corr-fault-0001"))
            XCTFail("the write should fail")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .unavailable)
            for leak in ["SQLite", "PostgreSQL", "INSERT", "loyalty_ledger", "injected", "TRIGGER"] {
                XCTAssertFalse(e.message.contains(leak), "the client saw internal detail: \(e.message)")
            }
            XCTAssertTrue(e.message.contains("corr-fault-0001"), "the client can quote the correlation id: \(e.message)")
        }
        XCTAssertTrue(h.log.contains { $0.contains("loyalty_request_failed") && $0.contains("injected disk fault") && $0.contains("corr-fault-0001") },
            "the log keeps the detail")
        // A slip completion failing the same way logs the seed's canonical line.
        let slip = try await h.startSlip("p2", id: "slip-fault-1")
        h.clock.advance(seconds: 3600)
        let (code, _) = await statusOf { try await h.complete(slip.slipId) }
        XCTAssertEqual(code, .unavailable)
        let line = try XCTUnwrap(h.log.last { $0.contains("\"loyalty_accrual_failed\"") })
        let fields = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(fields["player_id"] as? String, "p2")
        XCTAssertEqual(fields["rating_slip_id"] as? String, "slip-fault-1")
        XCTAssertEqual(fields["error_code"] as? String, "UNAVAILABLE")
        XCTAssertNotNil(fields["message"] as? String)
        XCTAssertEqual(fields["recovery_needed"] as? Bool, false, "one transaction: the slip is still open, nothing to recover")
        // The slip is still open and its points were not written.
        let view = try await h.client.getRatingSlip(.with { $0.slipId = "slip-fault-1" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(view.slip?.status, .open)
        XCTAssertNil(view.entry)
        try await removeInsertFailure(side, table: "loyalty_ledger", name: "no_ledger")
        side.close()
        await h.stop()
    }

    func testSlipLookupsFindTheSlipsClosedWithoutAccrualAndPage() async throws {
        let h = try LoyaltyHarness()
        for i in 0..<5 {
            _ = try await h.startSlip("p-look", id: "look-\(i)")
            h.clock.advance(seconds: 60)
        }
        h.clock.advance(seconds: 3600)
        for i in 0..<3 { _ = try await h.complete("look-\(i)") }
        // look-3 is closed without its accrual, as a crash between the two once could leave it.
        let side = try sideDoor(h)
        try await side.write { tx in
            _ = try tx.execute("UPDATE rating_slips SET status = 'CLOSED', ended_at = ?, duration_seconds = 60 WHERE slip_id = 'look-3'",
                [h.clock.nowMillis()])
        }
        side.close()
        let one = try await h.client.getRatingSlip(.with { $0.slipId = "look-0" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(one.slip?.status, .closed)
        XCTAssertEqual(one.entry?.ratingSlipId, "look-0")
        XCTAssertFalse(one.needsRecovery)
        let broken = try await h.client.getRatingSlip(.with { $0.slipId = "look-3" }, options: LoyaltyHarness.admin)
        XCTAssertTrue(broken.needsRecovery)
        let needy = try await h.client.listRatingSlips(.with { $0.needsRecoveryOnly = true }, options: LoyaltyHarness.admin)
        XCTAssertEqual(needy.slips.map { $0.slip?.slipId ?? "" }, ["look-3"])
        // Newest first, by player and status, paged two at a time.
        var seen: [String] = []
        var token = ""
        repeat {
            let page = try await h.client.listRatingSlips(.with {
                $0.playerId = "p-look"; $0.status = .closed; $0.pageSize = 2; $0.pageToken = token
            }, options: LoyaltyHarness.admin)
            seen += page.slips.map { $0.slip?.slipId ?? "" }
            token = page.nextPageToken
        } while !token.isEmpty
        XCTAssertEqual(seen, ["look-3", "look-2", "look-1", "look-0"])
        let open = try await h.client.listRatingSlips(.with { $0.status = .open }, options: LoyaltyHarness.admin)
        XCTAssertEqual(open.slips.map { $0.slip?.slipId ?? "" }, ["look-4"])
        // Looking writes nothing: RecoverSlipLoyalty is still what repairs it.
        let (denied, _) = await statusOf { try await h.client.listRatingSlips(.init(), options: LoyaltyHarness.pit) }
        XCTAssertEqual(denied, .permissionDenied)
        let repaired = try await h.client.recoverSlipLoyalty(.with { $0.slipId = "look-3" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(repaired.accrual?.replay, false)
        let none = try await h.client.listRatingSlips(.with { $0.needsRecoveryOnly = true }, options: LoyaltyHarness.admin)
        XCTAssertEqual(none.slips.count, 0)
        await h.stop()
    }

    func testLedgerSearchAndRewardFrequency() async throws {
        let h = try LoyaltyHarness()
        for i in 0..<4 {
            _ = try await h.client.manualReward(.with {
                $0.playerId = "p\(i)"; $0.points = 10; $0.reason = "Search reward number \(i)"; $0.staffId = "staff-a"
            }, options: LoyaltyHarness.staff("staff-a", correlation: "corr-search-\(i)"))
            h.clock.advance(seconds: 20)
        }
        let b = try await h.reward("p9", 5, staff: "staff-b", reason: "Another staff member")
        let byCorrelation = try await h.client.searchLedger(.with { $0.correlationId = "corr-search-2" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(byCorrelation.entries.map(\.playerId), ["p2"])
        let byKey = try await h.client.searchLedger(.with { $0.idempotencyKey = b.entry?.idempotencyKey ?? "" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(byKey.entries.map(\.staffId), ["staff-b"])
        var seen: [String] = []
        var token = ""
        repeat {
            let page = try await h.client.searchLedger(.with { $0.staffId = "staff-a"; $0.pageSize = 3; $0.pageToken = token },
                options: LoyaltyHarness.admin)
            seen += page.entries.map(\.playerId)
            token = page.nextPageToken
        } while !token.isEmpty
        XCTAssertEqual(seen, ["p3", "p2", "p1", "p0"], "newest first across pages")
        let (none, _) = await statusOf { try await h.client.searchLedger(.init(), options: LoyaltyHarness.admin) }
        XCTAssertEqual(none, .invalidArgument)
        // Slip search finds the gameplay entry.
        _ = try await h.startSlip("p-s", id: "search-slip")
        h.clock.advance(seconds: 600)
        _ = try await h.complete("search-slip")
        let bySlip = try await h.client.searchLedger(.with { $0.ratingSlipId = "search-slip" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(bySlip.entries.map(\.transactionType), [.gameplay])

        let frequency = try await h.client.getManualRewardFrequency(.with { $0.fromMs = LoyaltyHarness.start }, options: LoyaltyHarness.admin)
        let a = try XCTUnwrap(frequency.staff.first { $0.staffId == "staff-a" })
        XCTAssertEqual(a.rewards, 4)
        XCTAssertEqual(a.points, 40)
        XCTAssertEqual(a.busiestMinute, 3, "rewards 20 s apart: three fall within one minute")
        XCTAssertEqual(frequency.staff.map(\.staffId), ["staff-a", "staff-b"])
        let onlyB = try await h.client.getManualRewardFrequency(.with { $0.staffId = "staff-b" }, options: LoyaltyHarness.admin)
        XCTAssertEqual(onlyB.staff.map(\.rewards), [1])
        await h.stop()
    }
}
