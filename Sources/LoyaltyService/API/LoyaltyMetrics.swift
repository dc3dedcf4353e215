import Synchronization
import Wire

/// What an operator of loyalty pages on (`croupier_loyalty_*`, scraped by
/// the gateway for /metrics): accruals, rewards, refusals and tier upgrades
/// as this process logged them (every log line counts under its event, a
/// fixed set of names), and the alerts kept, by kind (from the database, so
/// every replica agrees).
public final class LoyaltyMetrics: Sendable {
    private let events = Mutex<[String: Int]>([:])

    public init() {}

    func count(_ event: String) { events.withLock { $0[event, default: 0] += 1 } }

    public func render(alerts: AlertLog) async throws -> ServiceFigures {
        var figures = ServiceFigures()
        figures.process.metric("croupier_loyalty_events_total", .counter, "Accruals, rewards, replays, refusals and tier upgrades this process logged, by event.")
        for (event, n) in events.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            figures.process.sample("croupier_loyalty_events_total", [("event", event)], Double(n))
        }
        // Every kind, 0 included: an alert rule on a series that does not exist yet never fires.
        figures.database.metric("croupier_loyalty_alerts", .gauge, "Alerts and notifications kept, by kind.")
        let counts = try await alerts.countsByKind()
        for kind in Alert.Kind.allCases.map(\.rawValue).sorted() {
            figures.database.sample("croupier_loyalty_alerts", [("kind", kind)], Double(counts[kind] ?? 0))
        }
        return figures
    }
}
