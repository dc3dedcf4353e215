/// A service process's figures, in two parts by where they come from.
public struct ServiceFigures: Sendable {
    /// This process's own figures (counters, durations): one series per replica.
    public var process = PrometheusText()
    /// Figures read from the service's database, the same in every replica:
    /// served once per service, however many replicas answer.
    public var database = PrometheusText()

    public init() {}
}

/// `croupier.ops.v1.Metrics`: a service process's figures in the Prometheus
/// text format, for the gateway to scrape over Wire and serve under /metrics.
public struct MetricsService: Croupier_Ops_V1_Metrics.ServiceProtocol {
    private let render: @Sendable () async throws -> ServiceFigures

    public init(render: @escaping @Sendable () async throws -> ServiceFigures) { self.render = render }

    public func scrape(request: Croupier_Ops_V1_ScrapeRequest, context: ServerContext) async throws -> Croupier_Ops_V1_ScrapeResponse {
        let figures = try await render()
        return .with {
            $0.text = figures.process.text
            $0.databaseText = figures.database.text
        }
    }
}
