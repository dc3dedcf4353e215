import Foundation
import LoyaltyService
import Storage
import Wire
import TestSupport
import XCTest

/// Who reads what, paging and export, concurrency, verification and rebuild.
final class LedgerAccessTests: XCTestCase {
    func testPlayersReadOnlyTheirOwnAccountAndLedger() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 100)
        _ = try await h.reward("p2", 200)
        let me = LoyaltyHarness.as_("p1", [])
        let own = try await h.client.getPlayerLoyalty(.with { $0.playerId = "p1" }, options: me)
        XCTAssertEqual(own.balance, 100)
        let ownLedger = try await h.client.listLedger(.with { $0.playerId = "p1" }, options: me)
        XCTAssertEqual(ownLedger.entries.map(\.points), [100])
        var (code, _) = await statusOf { try await h.client.getPlayerLoyalty(.with { $0.playerId = "p2" }, options: me) }
        XCTAssertEqual(code, .permissionDenied)
        (code, _) = await statusOf { try await h.client.listLedger(.with { $0.playerId = "p2" }, options: me) }
        XCTAssertEqual(code, .permissionDenied)
        (code, _) = await statusOf { try await h.client.getPlayerLoyalty(.with { $0.playerId = "p1" }, options: CallOptions()) }
        XCTAssertEqual(code, .unauthenticated)
        // Staff with loyalty:view_all read anyone's.
        let viewer = LoyaltyHarness.as_("host-9", [LoyaltyPermission.viewAll])
        let other = try await h.client.getPlayerLoyalty(.with { $0.playerId = "p2" }, options: viewer)
        XCTAssertEqual(other.balance, 200)
        // A player with no activity has an empty BRONZE account.
        let fresh = try await h.client.getPlayerLoyalty(.with { $0.playerId = "p3" }, options: viewer)
        XCTAssertEqual([fresh.balance, fresh.lifetimePoints, fresh.pointsToNextTier], [0, 0, 1_000])
        XCTAssertEqual(fresh.tier, .bronze)
        // Admin-only methods.
        (code, _) = await statusOf { try await h.client.verifyBalance(.init(), options: me) }
        XCTAssertEqual(code, .permissionDenied)
        await h.stop()
    }

    func testLedgerPagesNewestFirstWithinATimeRange() async throws {
        let h = try LoyaltyHarness()
        var times: [Int64] = []
        for i in 1...5 {
            times.append(h.clock.nowMillis())
            _ = try await h.reward("p1", Int64(i * 10), reason: "Reward number \(i) for paging")
            h.clock.advance(seconds: 120)
        }
        var pages: [[Int64]] = []
        var token = ""
        repeat {
            let page = try await h.client.listLedger(.with {
                $0.playerId = "p1"
                $0.pageSize = 2
                $0.pageToken = token
            }, options: LoyaltyHarness.admin)
            pages.append(page.entries.map(\.points))
            token = page.nextPageToken
        } while !token.isEmpty
        XCTAssertEqual(pages, [[50, 40], [30, 20], [10]])
        let ranged = try await h.client.listLedger(.with {
            $0.playerId = "p1"
            $0.fromMs = times[1]
            $0.toMs = times[3]
        }, options: LoyaltyHarness.admin)
        XCTAssertEqual(ranged.entries.map(\.points), [30, 20])
        var (code, _) = await statusOf {
            try await h.client.listLedger(.with {
                $0.playerId = "p1"
                $0.pageToken = "garbage"
            }, options: LoyaltyHarness.admin)
        }
        XCTAssertEqual(code, .invalidArgument)
        (code, _) = await statusOf {
            try await h.client.listLedger(.with {
                $0.playerId = "p1"
                $0.pageSize = 501
            }, options: LoyaltyHarness.admin)
        }
        XCTAssertEqual(code, .invalidArgument)

        // Export streams a time range oldest first, across players.
        _ = try await h.reward("p2", 7, staff: "staff-2", reason: "Another player's reward")
        let exported = Collected<Int64>()
        try await h.client.exportLedger(.with { $0.fromMs = times[2] }, options: LoyaltyHarness.admin) {
            exported.append($0.points)
        }
        XCTAssertEqual(exported.all, [30, 40, 50, 7])
        (code, _) = await statusOf {
            try await h.client.exportLedger(.with { $0.fromMs = 10; $0.toMs = 5 }, options: LoyaltyHarness.admin) { _ in }
        }
        XCTAssertEqual(code, .invalidArgument)
        await h.stop()
    }

    func testTenConcurrentRewardsOfOneHundredAddExactlyOneThousand() async throws {
        let h = try LoyaltyHarness()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<10 {
                group.addTask { _ = try await h.reward("p1", 100, rewardID: "burst-\(i)") }
            }
            try await group.waitForAll()
        }
        let account = try await h.balance("p1")
        XCTAssertEqual(account.balance, 1_000)
        let ledger = try await h.ledger("p1")
        XCTAssertEqual(ledger.count, 10)
        // Each saw the one before it: the before/after values chain 0 → 1,000.
        XCTAssertEqual(ledger.map(\.balanceBefore).sorted(), Array(stride(from: 0, to: 1_000, by: 100)))
        let verified = try await h.verify()
        XCTAssertTrue(verified.consistent)
        await h.stop()
    }

    /// The invariants a reward decides on hold when its writers race (on
    /// PostgreSQL, across connections: each write locks the keys it decides
    /// on): twenty rewards from one staff member at a limit of ten issue
    /// exactly ten, and one reward id sent twenty times at once is issued once.
    func testRacingRewardsKeepTheRateLimitAndIssueAnIdempotencyKeyOnce() async throws {
        let h = try LoyaltyHarness()
        let outcomes = try await withThrowingTaskGroup(of: StatusCode.self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        _ = try await h.reward("p\(i % 4)", 10, staff: "busy", rewardID: "busy-\(i)")
                        return .ok
                    } catch let e as RPCError { return e.code }
                }
            }
            return try await group.reduce(into: [StatusCode]()) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.filter { $0 == .ok }.count, 10, "\(outcomes)")
        XCTAssertEqual(outcomes.filter { $0 == .resourceExhausted }.count, 10, "\(outcomes)")
        let entries = try await withThrowingTaskGroup(of: Int64.self) { group in
            for _ in 0..<20 { group.addTask { try await h.reward("p9", 25, staff: "once", rewardID: "the-one").entry?.entryId ?? -1 } }
            return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
        }
        XCTAssertEqual(entries.count, 1, "one reward id became \(entries.count) entries")
        let balance = try await h.balance("p9").balance
        XCTAssertEqual(balance, 25)
        let verified = try await h.verify()
        XCTAssertTrue(verified.consistent)
        await h.stop()
    }

    func testARewardRacingACompletionBothCount() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.startSlip("p1", id: "race-1", bet: 50)
        h.clock.advance(seconds: 7200)  // 50 × 60 × 2 h × 2 % = 120 points
        async let completion = h.complete("race-1")
        async let reward = h.reward("p1", 500, reason: "Comp while the slip closes")
        let (c, r) = try await (completion, reward)
        XCTAssertEqual(c.accrual?.points, 120)
        XCTAssertEqual(r.accrual?.points, 500)
        let balance = try await h.balance("p1").balance
        XCTAssertEqual(balance, 620)
        let types = try await h.ledger("p1").map(\.transactionType)
        XCTAssertEqual(Set(types), [.gameplay, .manualBonus])
        let consistent = try await h.verify().consistent
        XCTAssertTrue(consistent, "every balance equals its ledger")
        await h.stop()
    }

    func testVerifyFindsDriftAndRebuildRepairsIt() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 1_500)
        _ = try await h.reward("p1", -200, reason: "Redeemed for a dinner")
        _ = try await h.reward("p2", 40)
        var verified = try await h.verify()
        XCTAssertTrue(verified.consistent)
        XCTAssertEqual(verified.playersChecked, 2)
        // A balance drifts (an out-of-band UPDATE, as in seed 001's runbook 4).
        let side = try Database(path: h.store.database.path, owner: "loyalty", migrations: LoyaltyStore.migrations)
        try await side.write { tx in _ = try tx.execute("UPDATE player_loyalty SET balance = 9999 WHERE player_id = 'p1'") }
        side.close()
        verified = try await h.verify()
        XCTAssertFalse(verified.consistent)
        XCTAssertEqual(verified.mismatches.map(\.playerId), ["p1"])
        XCTAssertEqual(verified.mismatches.first?.storedBalance, 9_999)
        XCTAssertEqual(verified.mismatches.first?.ledgerBalance, 1_300)
        let rebuilt = try await h.client.rebuildBalance(.with { $0.playerId = "p1" }, options: LoyaltyHarness.admin)
        XCTAssertTrue(rebuilt.changed)
        XCTAssertEqual(rebuilt.after?.balance, 1_300)
        XCTAssertEqual(rebuilt.after?.lifetimePoints, 1_500)
        XCTAssertEqual(rebuilt.after?.tier, .silver)
        verified = try await h.verify()
        XCTAssertTrue(verified.consistent)
        let again = try await h.client.rebuildBalance(.with { $0.playerId = "p1" }, options: LoyaltyHarness.admin)
        XCTAssertFalse(again.changed)
        let (code, _) = await statusOf { try await h.client.rebuildBalance(.with { $0.playerId = "ghost" }, options: LoyaltyHarness.admin) }
        XCTAssertEqual(code, .notFound)
        await h.stop()
    }

    func testWatchAlertsFollowsNewAlertsAndResumesFromAnOffset() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 1_000, staff: "s1")  // SILVER: alert 1
        let seen = Collected<Croupier_Loyalty_V1_Alert>()
        let watcher = Task {
            try await h.client.watchAlerts(.init(), options: LoyaltyHarness.admin) { seen.append($0) }
        }
        _ = try await h.reward("p2", 5_000, staff: "s1")  // GOLD: alert 2
        for _ in 0..<200 where seen.all.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
        watcher.cancel()
        XCTAssertEqual(seen.all.map(\.playerId), ["p1", "p2"])
        let resumed = Collected<String>()
        try await h.client.watchAlerts(.with {
            $0.afterOffset = seen.all[0].offset
            $0.untilCaughtUp = true
        }, options: LoyaltyHarness.admin) { resumed.append($0.playerId) }
        XCTAssertEqual(resumed.all, ["p2"], "no gap, no duplicate")
        await h.stop()
    }
}
