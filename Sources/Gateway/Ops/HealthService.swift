import Wire

/// `grpc.health.v1.Health` at the gateway. The empty service name is the
/// gateway itself (SERVING while it runs); a service name is answered by the
/// backend that owns it, asked over Wire with a short deadline — a backend
/// that does not answer is NOT_SERVING. Watch polls once a second and sends
/// each change.
struct HealthService: Grpc_Health_V1_Health.ServiceProtocol {
    let backends: [(GatewayConfig.Backend, any RPCChannel)]

    private func status(of service: String) async throws -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        if service.isEmpty { return .serving }
        let package = service.split(separator: ".").dropLast().joined(separator: ".")
        guard let (_, channel) = backends.first(where: { $0.0.packages.contains(package) }) else {
            throw RPCError(.notFound, "unknown service \(service)")
        }
        return try await ask(channel, service)
    }

    /// The backend's own answer; NOT_SERVING when it cannot be reached in time.
    private func ask(_ channel: any RPCChannel, _ service: String) async throws -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        do {
            let r = try await Grpc_Health_V1_Health.Client(channel: channel)
                .check(.with { $0.service = service }, options: .timeout(.seconds(1)))
            return r.status
        } catch let e as RPCError where e.code == .notFound {
            throw e
        } catch {
            return .notServing
        }
    }

    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        let s = try await status(of: request.service)
        return .with { $0.status = s }
    }

    func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        var out = Grpc_Health_V1_HealthListResponse()
        out.statuses[""] = .with { $0.status = .serving }
        for (b, channel) in backends {
            let s = (try? await ask(channel, "")) ?? .notServing
            out.statuses[b.name] = .with { $0.status = s }
            // Each replica as the gateway's balancer sees it ("loyalty@127.0.0.1:7101").
            for r in (channel as? ReplicaChannel)?.status ?? [] {
                out.statuses["\(b.name)@\(r.address)"] = .with { $0.status = r.healthy ? .serving : .notServing }
            }
        }
        return out
    }

    func watch(
        request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext
    ) async throws {
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus?
        while !Task.isCancelled {
            let s: Grpc_Health_V1_HealthCheckResponse.ServingStatus
            do { s = try await status(of: request.service) } catch let e as RPCError where e.code == .notFound { s = .serviceUnknown }
            if s != last {
                try await response.write(.with { $0.status = s })
                last = s
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}
