import Wire

/// Structured JSON log lines (seed 001's canonical log schema): every
/// accrual, reward, refusal and recovery, each with its correlation id.
public struct LoyaltyLog: Sendable {
    let sink: @Sendable (String) -> Void
    /// Counts every line by its event (a fixed set of names), for /metrics.
    let metrics: LoyaltyMetrics?

    public init(sink: @escaping @Sendable (String) -> Void, metrics: LoyaltyMetrics? = nil) {
        self.sink = sink
        self.metrics = metrics
    }

    func line(_ event: String, correlationID: String, _ fields: (inout JSONLine) -> Void) {
        metrics?.count(event)
        var w = JSONLine()
        w.time("time")
        w.field("service", "loyalty")
        w.field("event", event)
        w.request(RequestContext(correlationID: correlationID, trace: TraceContext.current))
        fields(&w)
        sink(w.finish())
    }

    /// An entry written or found: `loyalty_accrual_completed`, `manual_reward_issued`,
    /// `loyalty_recovery_completed`, or `loyalty_idempotency_hit` for a replay.
    func entry(_ event: String, _ a: Accrual, correlationID: String) {
        let e = a.entry
        line(a.replay ? "loyalty_idempotency_hit" : event, correlationID: correlationID) { w in
            w.field("player_id", e.playerID)
            if let slip = e.ratingSlipID { w.field("rating_slip_id", slip) }
            if let visit = e.visitID { w.field("visit_id", visit) }
            w.field("transaction_type", e.type.rawValue)
            w.number("points", e.points)
            w.number("balance_before", e.before.balance)
            w.number("balance_after", e.after.balance)
            w.field("tier_before", e.before.tier.name)
            w.field("tier_after", e.after.tier.name)
            if let staff = e.staffID { w.field("staff_id", staff) }
            if let reason = e.reason { w.field("reason", reason) }
            w.field("idempotency_key", e.idempotencyKey)
            w.number("ledger_entry_id", e.entryID)
            if a.replay { w.field("original_correlation_id", e.correlationID) }
        }
        if !a.replay && e.after.tier > e.before.tier {
            line("loyalty_tier_upgraded", correlationID: correlationID) { w in
                w.field("player_id", e.playerID)
                w.field("tier_before", e.before.tier.name)
                w.field("tier_after", e.after.tier.name)
                w.number("lifetime_points", e.after.lifetimePoints)
            }
        }
    }

    func refusal(method: String, principal: String?, error: LoyaltyError, correlationID: String) {
        line("loyalty_request_refused", correlationID: correlationID) { w in
            w.field("method", method)
            w.field("principal", principal)
            w.field("error_code", error.code)
            w.field("message", error.description)
        }
    }

    func failure(method: String, error: any Error, correlationID: String) {
        line("loyalty_request_failed", correlationID: correlationID) { w in
            w.field("method", method)
            w.field("message", String(describing: error))
        }
    }
}
