import Foundation
import LoyaltyService
import Wire
import TestSupport
import XCTest

/// Manual rewards: idempotency, audit rules, spoofing, rate limit, alerts.
final class ManualRewardTests: XCTestCase {
    func testSameRewardTheSameUTCDayIsOneEntryAndTheNextDayIsAnother() async throws {
        let h = try LoyaltyHarness()
        let first = try await h.reward("p1", 250)
        XCTAssertEqual(first.accrual?.replay, false)
        XCTAssertEqual(first.entry?.transactionType, .manualBonus)
        // A double click, hours later the same UTC day.
        h.clock.advance(seconds: 3 * 3600)
        let second = try await h.reward("p1", 250)
        XCTAssertEqual(second.accrual?.replay, true)
        XCTAssertEqual(second.accrual?.ledgerEntryId, first.accrual?.ledgerEntryId)
        var count = try await h.ledger("p1").count
        XCTAssertEqual(count, 1)
        // The next UTC day (10:00 + 14 h = 00:00 the day after) is a new reward.
        h.clock.advance(seconds: 11 * 3600)
        let third = try await h.reward("p1", 250)
        XCTAssertEqual(third.accrual?.replay, false)
        count = try await h.ledger("p1").count
        XCTAssertEqual(count, 2)
        let balance = try await h.balance("p1").balance
        XCTAssertEqual(balance, 500)
        await h.stop()
    }

    func testARewardIDUsedWithOtherParametersIsAConflict() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 100, rewardID: "promo-42")
        h.clock.advance(seconds: 3 * 86_400)
        let replay = try await h.reward("p1", 100, rewardID: "promo-42")
        XCTAssertEqual(replay.accrual?.replay, true, "a reward id is the key on any day")
        let (code, message) = await statusOf { try await h.reward("p1", 200, rewardID: "promo-42") }
        XCTAssertEqual(code, .alreadyExists)
        XCTAssertTrue(message.contains("promo-42") && message.contains("points 100"), message)
        let (code2, _) = await statusOf { try await h.reward("p2", 100, rewardID: "promo-42") }
        XCTAssertEqual(code2, .alreadyExists)
        let balance = try await h.balance("p1").balance
        XCTAssertEqual(balance, 100)
        await h.stop()
    }

    func testEveryValidationRefusalChangesNothing() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 300)
        func code(_ body: () async throws -> Croupier_Loyalty_V1_ManualRewardResponse) async -> StatusCode {
            await statusOf(body).0
        }
        var c = await code { try await h.reward("p1", 100, reason: "too short") }
        XCTAssertEqual(c, .invalidArgument)
        c = await code { try await h.reward("p1", 0) }
        XCTAssertEqual(c, .invalidArgument)
        c = await code { try await h.reward("p1", 10_001) }
        XCTAssertEqual(c, .invalidArgument)
        c = await code { try await h.reward("p1", -10_001) }
        XCTAssertEqual(c, .invalidArgument)
        c = await code { try await h.reward("", 100) }
        XCTAssertEqual(c, .invalidArgument)
        c = await code { try await h.reward("p1", -301, reason: "Correction of a keying error") }
        XCTAssertEqual(c, .failedPrecondition, "the balance may not go below zero")
        c = await code {
            try await h.client.manualReward(.with {
                $0.playerId = "p1"
                $0.points = 5
                $0.reason = "No permission to do this"
                $0.staffId = "pit-boss"
            }, options: LoyaltyHarness.pit)
        }
        XCTAssertEqual(c, .permissionDenied)
        c = await code {
            try await h.client.manualReward(.with {
                $0.playerId = "p1"
                $0.points = 5
                $0.reason = "Nobody is calling here"
                $0.staffId = "s"
            }, options: CallOptions())
        }
        XCTAssertEqual(c, .unauthenticated)
        // A whole-balance adjustment is allowed and is an ADJUSTMENT.
        let adjust = try await h.reward("p1", -300, reason: "Correction of a keying error")
        XCTAssertEqual(adjust.entry?.transactionType, .adjustment)
        XCTAssertEqual(adjust.accrual?.balanceAfter, 0)
        let ledger = try await h.ledger("p1")
        XCTAssertEqual(ledger.count, 2)
        XCTAssertTrue(h.log.contains { $0.contains("\"loyalty_request_refused\"") && $0.contains("INVALID_ARGUMENT") })
        let consistent = try await h.verify().consistent
        XCTAssertTrue(consistent)
        await h.stop()
    }

    func testASpoofedStaffIDIsRefusedLoggedAndAlerted() async throws {
        let h = try LoyaltyHarness()
        let (code, _) = await statusOf {
            try await h.client.manualReward(.with {
                $0.playerId = "p1"
                $0.points = 5_000
                $0.reason = "Definitely legitimate"
                $0.staffId = "staff-manager"
            }, options: LoyaltyHarness.staff("staff-1", correlation: "corr-spoof"))
        }
        XCTAssertEqual(code, .permissionDenied)
        XCTAssertTrue(h.log.contains {
            $0.contains("\"manual_reward_spoofing_attempt\"") && $0.contains("corr-spoof") && $0.contains("staff-manager")
        })
        let alerts = try await h.alerts()
        XCTAssertEqual(alerts.map(\.kind), [.staffIdMismatch])
        XCTAssertEqual(alerts.first?.staffId, "staff-1")
        let count = try await h.ledger("p1").count
        XCTAssertEqual(count, 0)
        await h.stop()
    }

    func testTenRewardsAMinutePerStaffMember() async throws {
        let h = try LoyaltyHarness()
        for i in 0..<10 { _ = try await h.reward("p\(i)", 10, reason: "Reward number \(i) of ten") }
        let (code, message) = await statusOf { try await h.reward("p10", 10, reason: "The eleventh in a minute") }
        XCTAssertEqual(code, .resourceExhausted)
        XCTAssertTrue(message.contains("staff-1"), message)
        // Another staff member is not limited; a retry of an issued reward is a replay, not a new reward.
        _ = try await h.reward("p10", 10, staff: "staff-2", reason: "The eleventh in a minute")
        let retry = try await h.reward("p0", 10, reason: "Reward number 0 of ten")
        XCTAssertEqual(retry.accrual?.replay, true)
        h.clock.advance(seconds: 61)
        _ = try await h.reward("p10", 10, reason: "The eleventh in a minute")
        await h.stop()
    }

    /// One rate limit, one meaning: the refusal carries `retry-after-ms`, a
    /// call made at that moment passes and one a millisecond earlier does
    /// not; a replay at the limit is answered (and does not count).
    func testTheRetryHintIsExactAndAReplayAtTheLimitIsAnswered() async throws {
        let h = try LoyaltyHarness()
        for i in 0..<10 {
            _ = try await h.reward("p\(i)", 10, reason: "Reward number \(i) of ten")
            h.clock.advance(seconds: 1)
        }
        var hint: Int64 = 0
        do {
            _ = try await h.reward("p10", 10, reason: "The eleventh in a minute")
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .resourceExhausted)
            hint = Int64(e.metadata["retry-after-ms"] ?? "") ?? -1
            XCTAssertTrue(e.message.contains("retry in \(hint) ms"), e.message)
        }
        XCTAssertEqual(hint, 50_000, "the first reward (10 s ago) leaves the 60 s window in 50 s")
        // At the limit, a replay is still the original entry.
        let replay = try await h.reward("p3", 10, reason: "Reward number 3 of ten")
        XCTAssertEqual(replay.accrual?.replay, true)
        h.clock.advance(millis: hint - 1)
        let (early, _) = await statusOf { try await h.reward("p10", 10, reason: "The eleventh in a minute") }
        XCTAssertEqual(early, .resourceExhausted, "a millisecond before the hint")
        h.clock.advance(millis: 1)
        let issued = try await h.reward("p10", 10, reason: "The eleventh in a minute")
        XCTAssertEqual(issued.accrual?.replay, false, "at the hint the call passes")
        await h.stop()
    }

    func testMoreThanTwentyAnHourRaisesOneAlertPerStaffAndHour() async throws {
        let h = try LoyaltyHarness()
        for i in 0..<25 {
            if i > 0 && i % 10 == 0 { h.clock.advance(seconds: 61) }
            _ = try await h.reward("p\(i)", 10, reason: "Frequent reward \(i)")
            let raised = try await h.alerts().filter { $0.kind == .manualRewardFrequency }.count
            XCTAssertEqual(raised, i >= 20 ? 1 : 0, "after reward \(i + 1)")
        }
        let alert = try await h.alerts().first { $0.kind == .manualRewardFrequency }
        XCTAssertEqual(alert?.staffId, "staff-1")
        XCTAssertTrue(alert?.message.contains("21") ?? false, alert?.message ?? "")
        await h.stop()
    }

    func testTierUpgradeProgressAndNotification() async throws {
        let h = try LoyaltyHarness()
        let a = try await h.reward("p1", 600, staff: "s1", correlation: "corr-tier")
        XCTAssertEqual(a.accrual?.tierAfter, .bronze)
        XCTAssertEqual(a.accrual?.tierProgress, 60)
        let b = try await h.reward("p1", 400, staff: "s1", reason: "Second goodwill gesture", correlation: "corr-tier-2")
        XCTAssertEqual(b.accrual?.tierBefore, .bronze)
        XCTAssertEqual(b.accrual?.tierAfter, .silver)
        XCTAssertEqual(b.accrual?.lifetimePoints, 1_000)
        XCTAssertEqual(b.accrual?.tierProgress, 20, "1,000 of GOLD's 5,000")
        // An adjustment spends balance, never lifetime points or the tier.
        let c = try await h.reward("p1", -500, staff: "s1", reason: "Points redeemed at the shop")
        XCTAssertEqual(c.accrual?.tierAfter, .silver)
        XCTAssertEqual(c.accrual?.lifetimePoints, 1_000)
        let account = try await h.balance("p1")
        XCTAssertEqual(account.balance, 500)
        XCTAssertEqual(account.tier, .silver)
        XCTAssertEqual(account.nextTier, .gold)
        XCTAssertEqual(account.pointsToNextTier, 4_000)
        let upgrades = try await h.alerts().filter { $0.kind == .tierUpgrade }
        XCTAssertEqual(upgrades.count, 1)
        XCTAssertEqual(upgrades.first?.tierBefore, .bronze)
        XCTAssertEqual(upgrades.first?.tierAfter, .silver)
        XCTAssertEqual(upgrades.first?.correlationId, "corr-tier-2")
        XCTAssertTrue(h.log.contains { $0.contains("\"loyalty_tier_upgraded\"") })
        // To PLATINUM in steps of 10,000: progress 100.
        for i in 0..<2 { _ = try await h.reward("p1", 10_000, staff: "s1", reason: "High roller welcome \(i)") }
        let top = try await h.balance("p1")
        XCTAssertEqual(top.tier, .platinum)
        XCTAssertEqual(top.tierProgress, 100)
        XCTAssertEqual(top.nextTier, .unspecified)
        let upgradeCount = try await h.alerts().filter { $0.kind == .tierUpgrade }.count
        XCTAssertEqual(upgradeCount, 3, "BRONZE→SILVER, SILVER→GOLD (11,000), GOLD→PLATINUM (21,000)")
        let consistent = try await h.verify().consistent
        XCTAssertTrue(consistent, "every balance equals its ledger")
        await h.stop()
    }

    func testTheCorrelationIDIsStoredOnTheLedgerRow() async throws {
        let h = try LoyaltyHarness()
        _ = try await h.reward("p1", 75, correlation: "req-7f3a")
        let entry = try await h.ledger("p1").first
        XCTAssertEqual(entry?.correlationId, "req-7f3a")
        XCTAssertEqual(entry?.staffId, "staff-1")
        XCTAssertEqual(entry?.reason, "Birthday bonus for a loyal guest")
        XCTAssertTrue(entry?.idempotencyKey.hasPrefix("manual:") ?? false)
        XCTAssertTrue(h.log.contains { $0.contains("\"manual_reward_issued\"") && $0.contains("\"correlation_id\":\"req-7f3a\"") })
        await h.stop()
    }
}
