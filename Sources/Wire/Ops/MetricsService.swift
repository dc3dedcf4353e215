/// `croupier.ops.v1.Metrics`: a service process's figures in the Prometheus
/// text format, for the gateway to scrape over Wire and serve under /metrics.
public struct MetricsService: Croupier_Ops_V1_Metrics.ServiceProtocol {
    private let render: @Sendable () async throws -> String

    public init(render: @escaping @Sendable () async throws -> String) { self.render = render }

    public func scrape(request: Croupier_Ops_V1_ScrapeRequest, context: ServerContext) async throws -> Croupier_Ops_V1_ScrapeResponse {
        let text = try await render()
        return .with { $0.text = text }
    }
}
