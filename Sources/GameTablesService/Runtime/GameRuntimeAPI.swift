import Wire

/// `croupier.gametables.v1.GameRuntime`.
public struct GameRuntimeAPI: Croupier_Gametables_V1_GameRuntime.ServiceProtocol {
    let store: RuntimeStore

    public init(store: RuntimeStore) {
        self.store = store
    }

    public func registerGame(
        request: Croupier_Gametables_V1_RegisterGameRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Game {
        switch request.status {
        case .unspecified, .running: return try await store.register(request.gameId, paused: false)
        case .paused: return try await store.register(request.gameId, paused: true)
        default: throw RPCError(.invalidArgument, "a game registers as RUNNING or PAUSED")
        }
    }

    public func publishRuntimeEvents(
        request: Croupier_Gametables_V1_PublishRuntimeEventsRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_PublishRuntimeEventsResponse {
        guard (1...10_000).contains(request.events.count) else {
            throw RPCError(.invalidArgument, "publish 1–10,000 events per call (got \(request.events.count))")
        }
        // Stored as sent: the consumer skips (and logs) what it cannot decode.
        let ids = try await store.publish(request.events)
        return .with { $0.entryIds = ids }
    }

    public func getGame(request: Croupier_Gametables_V1_GetGameRequest, context: ServerContext) async throws -> Croupier_Gametables_V1_Game {
        try await store.game(request.gameId)
    }

    public func getGameStats(
        request: Croupier_Gametables_V1_GetGameRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_GameStats {
        try await store.stats(request.gameId)
    }

    public func getConsumerStatus(
        request: Croupier_Gametables_V1_GetConsumerStatusRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ConsumerStatus {
        let s = try await store.consumerStatus()
        return .with {
            $0.offset = s.offset
            $0.lastEntryId = s.last
            $0.lag = s.lag
            $0.skipped = s.skipped
            $0.evaluations = s.evaluations
        }
    }
}
