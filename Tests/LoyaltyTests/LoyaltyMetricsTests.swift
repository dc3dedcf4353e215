import LoyaltyService
import XCTest

final class LoyaltyMetricsTests: XCTestCase {
    /// Every alert kind is a series from the start, 0 until one is kept: an
    /// alert rule on a series that does not exist yet never fires (and the
    /// gateway's merge expected the family on a fresh platform too).
    func testEveryAlertKindIsExportedZeroIncluded() async throws {
        let h = try LoyaltyHarness()
        let text = try await LoyaltyMetrics().render(alerts: h.store.alerts).database.text
        for kind in ["MANUAL_REWARD_FREQUENCY", "STAFF_ID_MISMATCH", "TIER_UPGRADE"] {
            XCTAssertTrue(text.contains("croupier_loyalty_alerts{kind=\"\(kind)\"} 0\n"), text)
        }
        await h.stop()
    }
}
