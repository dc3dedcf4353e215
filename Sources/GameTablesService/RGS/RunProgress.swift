import Storage
import Wire

/// GetCleanupRun: a run's environments, servers and slices, each slice with
/// its Games operation as RGS last learned it.
extension CleanupRunStore {
    public func run(_ runID: String) async throws -> Croupier_Gametables_V1_CleanupRun {
        try await database.read { db in
            guard let (archivedAt, startedAt, skipped) = try db.queryFirst(
                "SELECT archived_at, started_at, skipped_environments FROM cleanup_runs WHERE run_id = ?", [runID],
                { ($0.int64(0), $0.int64(1), $0.string(2)) })
            else { throw RPCError(.notFound, "cleanup run \(runID) does not exist") }
            var slices: [String: [Croupier_Gametables_V1_SliceOutcome]] = [:]
            for (server, outcome) in try db.query(
                """
                SELECT server_id, request_id, action, length(bo_ids) - length(replace(bo_ids, ',', '')) + 1, operation_id, games_status, missing_ids, failure, outcome, attempts,
                    last_error, state
                FROM cleanup_slices WHERE run_id = ? ORDER BY request_id
                """, [runID], RgsProto.slice)
            {
                slices[server, default: []].append(outcome)
            }
            let jobs = try db.query(
                """
                SELECT environment_id, server_id, state, to_delete, to_archive, failure FROM cleanup_jobs
                WHERE run_id = ? ORDER BY environment_id, position
                """, [runID]
            ) { r in
                let detail = slices[r.string(1)] ?? []
                return (r.string(0), Croupier_Gametables_V1_ServerJob.with {
                    $0.serverId = r.string(1)
                    $0.state = RgsProto.state(r.string(2))
                    $0.toDelete = r.int64(3)
                    $0.toArchive = r.int64(4)
                    $0.failure = r.string(5)
                    $0.slices = Int64(detail.count)
                    $0.slicesSent = Int64(detail.filter { $0.attempts > 0 }.count)
                    $0.slicesAcknowledged = Int64(detail.filter { !$0.operationId.isEmpty }.count)
                    $0.operationIds = detail.map(\.operationId).filter { !$0.isEmpty }
                    $0.slicesDetail = detail
                })
            }
            var environments: [Croupier_Gametables_V1_EnvironmentJob] = []
            for (env, job) in jobs {
                if environments.last?.environmentId != env { environments.append(.with { $0.environmentId = env }) }
                environments[environments.count - 1].servers.append(job)
            }
            for i in environments.indices { environments[i].state = RgsProto.overall(environments[i].servers.map(\.state)) }
            return .with {
                $0.runId = runID
                $0.archivedAtMs = archivedAt
                $0.startedAtMs = startedAt
                $0.environments = environments
                $0.skippedEnvironments = skipped.split(separator: ",").map(String.init)
                $0.state = RgsProto.overall(environments.flatMap { $0.servers.map(\.state) })
            }
        }
    }
}

enum RgsProto {
    static func state(_ s: String) -> Croupier_Gametables_V1_JobState {
        switch s {
        case "PENDING": return .pending
        case "SENDING": return .sending
        case "DONE": return .done
        case "FAILED": return .failed
        case "NOTHING_TO_DO": return .nothingToDo
        default: return .unspecified
        }
    }

    static func slice(_ r: Row) -> (String, Croupier_Gametables_V1_SliceOutcome) {
        (r.string(0), .with {
            $0.requestId = r.string(1)
            $0.action = r.string(2) == "DELETE" ? .delete : .archive
            $0.ids = r.int64(3)  // ids in the slice: its commas plus one
            $0.operationId = r.string(4)
            $0.gamesStatus = CleanupOperation.Status(rawValue: r.string(5)).map(GamesProto.status) ?? .unspecified
            $0.missingIds = IDList.decode(r.string(6))
            $0.failure = r.string(7)
            $0.appliedLocally = r.string(8) == "APPLIED"
            $0.attempts = r.int64(9)
            $0.lastError = r.string(10)
        })
    }

    /// A group's state: PENDING while any job waits, SENDING while any
    /// slice is owed, then FAILED if any job failed, else DONE.
    static func overall(_ states: [Croupier_Gametables_V1_JobState]) -> Croupier_Gametables_V1_JobState {
        if states.contains(.pending) { return .pending }
        if states.contains(.sending) { return .sending }
        if states.contains(.failed) { return .failed }
        return .done
    }
}
