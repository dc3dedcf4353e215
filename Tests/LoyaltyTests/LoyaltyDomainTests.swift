import LoyaltyService
import TestSupport
import XCTest

/// The pure rules: points maths, tiers and progress, accounts, idempotency keys.
final class LoyaltyDomainTests: XCTestCase {
    func testPointsAreTheoreticalWinTimesRateRoundedDown() {
        let table = GameSettings(houseEdgePercent: 2, decisionsPerHour: 60, pointsPerTheoreticalWin: 0.1)
        // 25 × 60 × 1 h × 2 % = 30 theoretical win; × 0.1 = 3 points exactly (binary floating point gives 2.9999…).
        XCTAssertEqual(TheoreticalWin.points(averageBet: 25, settings: table, durationSeconds: 3600), 3)
        // 90 minutes: 45 × 0.1 = 4.5 → 4.
        XCTAssertEqual(TheoreticalWin.points(averageBet: 25, settings: table, durationSeconds: 5400), 4)
        // Baccarat: 1.06 % edge, 72 decisions/h, 100 bet, 2.5 h, 1 point per unit: 190.8 → 190.
        let baccarat = GameSettings(houseEdgePercent: 1.06, decisionsPerHour: 72, pointsPerTheoreticalWin: 1)
        XCTAssertEqual(TheoreticalWin.points(averageBet: 100, settings: baccarat, durationSeconds: 9000), 190)
        XCTAssertEqual(TheoreticalWin.points(averageBet: 100, settings: baccarat, durationSeconds: 0), 0)
        // 0.1 + 0.2 style inputs stay exact: 0.3 × 100 × 1 h × 10 % × 1 = 3.
        let odd = GameSettings(houseEdgePercent: 10, decisionsPerHour: 100, pointsPerTheoreticalWin: 1)
        XCTAssertEqual(TheoreticalWin.points(averageBet: 0.3, settings: odd, durationSeconds: 3600), 3)
        // The largest inputs the API accepts do not overflow.
        let top = GameSettings(houseEdgePercent: 100, decisionsPerHour: 10_000, pointsPerTheoreticalWin: 1_000)
        XCTAssertGreaterThan(
            TheoreticalWin.points(averageBet: 1_000_000, settings: top, durationSeconds: RatingSlip.maxDurationSeconds), 0)
    }

    func testTiersAndProgress() throws {
        let s = TierSchedule.standard
        XCTAssertEqual(s.tier(lifetimePoints: 0), .bronze)
        XCTAssertEqual(s.tier(lifetimePoints: 999), .bronze)
        XCTAssertEqual(s.tier(lifetimePoints: 1_000), .silver)
        XCTAssertEqual(s.tier(lifetimePoints: 4_999), .silver)
        XCTAssertEqual(s.tier(lifetimePoints: 5_000), .gold)
        XCTAssertEqual(s.tier(lifetimePoints: 20_000), .platinum)
        XCTAssertEqual(s.progress(lifetimePoints: 0), 0)
        XCTAssertEqual(s.progress(lifetimePoints: 600), 60)
        XCTAssertEqual(s.progress(lifetimePoints: 999), 99, "100 only once the tier is reached")
        XCTAssertEqual(s.progress(lifetimePoints: 1_000), 20, "share of GOLD's 5,000")
        XCTAssertEqual(s.progress(lifetimePoints: 10_000), 50, "share of PLATINUM's 20,000")
        XCTAssertEqual(s.progress(lifetimePoints: 20_000), 100)
        XCTAssertEqual(s.progress(lifetimePoints: 1_000_000), 100)
        let custom = try TierSchedule(silver: 10, gold: 20, platinum: 30)
        XCTAssertEqual(custom.tier(lifetimePoints: 25), .gold)
        // The largest thresholds a config may set: progress needs more than 64 bits and still comes out right.
        let huge = try TierSchedule(silver: 10, gold: 20, platinum: .max)
        XCTAssertEqual(huge.progress(lifetimePoints: .max / 2), 49)  // 49.99…, rounded down
        XCTAssertEqual(huge.progress(lifetimePoints: .max / 2 + 1), 50)
        XCTAssertEqual(huge.progress(lifetimePoints: .max - 1), 99)
        XCTAssertThrowsError(try TierSchedule(silver: 100, gold: 100, platinum: 300))
        XCTAssertThrowsError(try TierSchedule(silver: 0, gold: 100, platinum: 300))
    }

    func testAccountChanges() throws {
        let s = TierSchedule.standard
        let a = try Account.empty.applying(1_200, schedule: s, playerID: "p")
        XCTAssertEqual(a, Account(balance: 1_200, lifetimePoints: 1_200, tier: .silver))
        // An adjustment lowers the balance, not lifetime points or the tier.
        let b = try a.applying(-1_000, schedule: s, playerID: "p")
        XCTAssertEqual(b, Account(balance: 200, lifetimePoints: 1_200, tier: .silver))
        XCTAssertThrowsError(try b.applying(-201, schedule: s, playerID: "p")) { e in
            guard case LoyaltyError.failedPrecondition = e else { return XCTFail("\(e)") }
        }
        XCTAssertEqual(try b.applying(-200, schedule: s, playerID: "p").balance, 0)
        // Neither the balance nor lifetime points may overflow: the change is refused, not trapped on.
        for account in [Account(balance: .max - 5, lifetimePoints: .max - 5, tier: .platinum),
                        Account(balance: 10, lifetimePoints: .max - 5, tier: .platinum)] {
            XCTAssertThrowsError(try account.applying(6, schedule: s, playerID: "p")) { e in
                guard case LoyaltyError.invalidArgument = e else { return XCTFail("\(e)") }
            }
            XCTAssertEqual(try account.applying(5, schedule: s, playerID: "p").lifetimePoints, .max)
        }
    }

    func testManualKeysAreDeterministicAndDayBucketed() {
        let day: Int64 = 1_795_392_000_000  // 2026-11-23T00:00Z
        let r = ManualReward(playerID: "p1", points: 250, reason: "Birthday bonus", staffID: "s1")
        XCTAssertEqual(r.idempotencyKey(nowMillis: day + 1), r.idempotencyKey(nowMillis: day + 86_399_999))
        XCTAssertNotEqual(r.idempotencyKey(nowMillis: day + 1), r.idempotencyKey(nowMillis: day + 86_400_000))
        XCTAssertTrue(r.idempotencyKey(nowMillis: day).hasPrefix("manual:"))
        var other = r
        other.points = 251
        XCTAssertNotEqual(r.idempotencyKey(nowMillis: day), other.idempotencyKey(nowMillis: day))
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        let x = ManualReward(playerID: "ab", points: 1, reason: "c", staffID: "s")
        let y = ManualReward(playerID: "a", points: 1, reason: "bc", staffID: "s")
        XCTAssertNotEqual(x.idempotencyKey(nowMillis: day), y.idempotencyKey(nowMillis: day))
        // A reward id alone is the key, whatever the day.
        let promo = ManualReward(playerID: "p1", points: 250, reason: "Birthday bonus", staffID: "s1", rewardID: "promo-7")
        XCTAssertEqual(promo.idempotencyKey(nowMillis: day), promo.idempotencyKey(nowMillis: day + 10 * 86_400_000))
    }

    func testManualRewardRules() {
        let settings = LoyaltySettings()
        func refused(_ r: ManualReward) -> String? {
            do { try r.validate(settings); return nil } catch { return "\(error)" }
        }
        let ok = ManualReward(playerID: "p1", points: 100, reason: "Service recovery", staffID: "s1")
        XCTAssertNil(refused(ok))
        var r = ok
        r.reason = "too short"
        XCTAssertNotNil(refused(r))
        r = ok
        r.points = 0
        XCTAssertNotNil(refused(r))
        r.points = 10_001
        XCTAssertNotNil(refused(r))
        r.points = -10_001
        XCTAssertNotNil(refused(r))
        r.points = -10_000
        XCTAssertNil(refused(r))
        r = ok
        r.playerID = ""
        XCTAssertNotNil(refused(r))
        r = ok
        r.ratingSlipID = "bad id!"
        XCTAssertNotNil(refused(r))
    }
}
