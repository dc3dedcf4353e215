import Foundation
import Wire

/// `croupier.gametables.v1.RgsCleanup`.
public struct RgsCleanupAPI: Croupier_Gametables_V1_RgsCleanup.ServiceProtocol {
    let estate: EstateStore
    let runs: CleanupRunStore
    var log: @Sendable (String) -> Void = { _ in }

    public func loadEstate(
        request: RPCAsyncSequence<Croupier_Gametables_V1_EstateRecord>, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_LoadSummary {
        var total = Croupier_Gametables_V1_LoadSummary()
        var batch: [Croupier_Gametables_V1_EstateRecord] = []
        func flush() async throws {
            let s = try await estate.load(batch)
            total.environments += s.environments
            total.servers += s.servers
            total.tables += s.tables
            total.traffic += s.traffic
            batch.removeAll(keepingCapacity: true)
        }
        for try await record in request {
            batch.append(record)
            if batch.count == 2_000 { try await flush() }
        }
        try await flush()
        return total
    }

    public func listEnvironments(
        request: Croupier_Gametables_V1_ListEnvironmentsRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ListEnvironmentsResponse {
        try await estate.environments()
    }

    public func listRgsTables(
        request: Croupier_Gametables_V1_ListRgsTablesRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ListRgsTablesResponse {
        let rows = try await estate.tables(serverID: request.serverId)
        return .with {
            $0.tables = rows.map { t in
                .with {
                    $0.tableId = t.tableID
                    $0.serverId = t.serverID
                    $0.boId = t.boID
                    $0.currency = t.currency
                    $0.active = t.active
                    $0.archivedAtMs = t.archivedAtMillis ?? 0
                }
            }
        }
    }

    public func kickoffCleanup(
        request: Croupier_Gametables_V1_KickoffCleanupRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_CleanupRun {
        if !request.runId.isEmpty, !GameID.isValid(request.runId) || request.runId.contains("/") {
            throw RPCError(.invalidArgument, "run_id must be 1–128 characters without spaces or '/'")
        }
        let runID = request.runId.isEmpty ? "run_" + UUID().uuidString.lowercased() : request.runId
        // The kickoff wakes the runner (RgsRole's singleton, in this process or another replica).
        let actor = ChangeActor(context)
        _ = try await runs.kickoff(runID: runID, actor: actor)
        log(GamesLog.line("cleanup_kicked_off", service: "rgs", [
            ("run_id", runID), ("principal", actor.principal),
        ]))
        return try await runs.run(runID)
    }

    public func getCleanupRun(
        request: Croupier_Gametables_V1_GetCleanupRunRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_CleanupRun {
        try await runs.run(request.runId)
    }
}
