/// `grpc.health.v1.Health` for a Wire server: SERVING for the server as a
/// whole ("") and for each service it serves, NOT_FOUND for anything else.
/// `WireServer` adds it unless a service of its own implements Health.
public struct StandardHealthService: Grpc_Health_V1_Health.ServiceProtocol {
    let services: Set<String>

    public init(services: Set<String>) { self.services = services }

    private func status(_ service: String) throws -> Grpc_Health_V1_HealthCheckResponse {
        guard service.isEmpty || services.contains(service) else { throw RPCError(.notFound, "unknown service \(service)") }
        return .with { $0.status = .serving }
    }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        try status(request.service)
    }

    public func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        var out = Grpc_Health_V1_HealthListResponse()
        for s in services.union([""]) { out.statuses[s] = .with { $0.status = .serving } }
        return out
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext
    ) async throws {
        try await response.write(try status(request.service))
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
