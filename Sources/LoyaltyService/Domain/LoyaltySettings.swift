/// The service's business limits (issue #7 defaults).
public struct LoyaltySettings: Sendable {
    public var tiers = TierSchedule.standard
    /// Most manual rewards one staff member may issue in any `manualRewardWindowMillis`
    /// (the platform's `SlidingWindow` model; replays do not count).
    public var manualRewardsPerMinute = 10
    public var manualRewardWindowMillis: Int64 = 60_000
    /// More manual rewards than this by one staff member within an hour raise an alert.
    public var manualRewardAlertPerHour = 20
    /// Largest |points| of one manual reward.
    public var maxManualPoints: Int64 = 10_000
    public var minReasonLength = 10

    public init() {}
}
