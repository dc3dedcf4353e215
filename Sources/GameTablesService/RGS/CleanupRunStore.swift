import Foundation
import Storage
import Wire

/// One slice owed to Games.
public struct CleanupSlice: Sendable, Equatable {
    public var requestID: String
    public var runID: String
    public var serverID: String
    public var action: CleanupOperation.Action
    public var boIDs: [Int64]
    public var archivedAtMillis: Int64
}

/// Cleanup runs, their per-server jobs and the slice outbox.
public struct CleanupRunStore: Sendable {
    let database: Database
    let clock: any StorageClock

    /// Raised after a commit that queued slices, so the sender wakes at once.
    var slicesQueued: ChangeSignal { database.signal("cleanup_slices") }

    /// Creates a run (one PENDING job per active server of every environment
    /// that has one) or returns the existing run with this id.
    public func kickoff(runID: String) async throws -> String {
        let now = clock.nowMillis()
        return try await database.write { tx in
            if try tx.queryFirst("SELECT 1 FROM cleanup_runs WHERE run_id = ?", [runID], { _ in true }) != nil { return runID }
            let environments = try tx.query("SELECT environment_id FROM environments ORDER BY environment_id") { $0.string(0) }
            var skipped: [String] = []
            for env in environments {
                let servers = try tx.query(
                    "SELECT server_id FROM servers WHERE environment_id = ? AND active = 1 ORDER BY server_id", [env]) { $0.string(0) }
                if servers.isEmpty { skipped.append(env); continue }
                for (position, server) in servers.enumerated() {
                    try tx.execute(
                        "INSERT INTO cleanup_jobs (run_id, environment_id, server_id, position, state) VALUES (?, ?, ?, ?, 'PENDING')",
                        [runID, env, server, position])
                }
            }
            try tx.execute(
                "INSERT INTO cleanup_runs (run_id, archived_at, started_at, skipped_environments) VALUES (?, ?, ?, ?)",
                [runID, ArchiveTime.of(dayContaining: now), now, skipped.joined(separator: ",")])
            return runID
        }
    }

    /// (run, environment) chains with a job still PENDING.
    public func pendingChains() async throws -> [(runID: String, environmentID: String)] {
        try await database.read { db in
            try db.query("SELECT DISTINCT run_id, environment_id FROM cleanup_jobs WHERE state = 'PENDING'") { ($0.string(0), $0.string(1)) }
        }
    }

    /// The next PENDING server of an environment's chain, in order.
    func nextJob(runID: String, environmentID: String) async throws -> String? {
        try await database.read { db in
            try db.queryFirst(
                """
                SELECT server_id FROM cleanup_jobs WHERE run_id = ? AND environment_id = ? AND state = 'PENDING'
                ORDER BY position LIMIT 1
                """, [runID, environmentID]) { $0.string(0) }
        }
    }

    /// Runs one server's cleanup in one transaction: the local tables are
    /// deleted or archived with the run's `archived_at`, and the slices for
    /// Games are queued in the outbox, together. A server whose plan is
    /// refused is marked FAILED and nothing of it changes.
    func process(runID: String, serverID: String) async throws {
        let signal = slicesQueued
        try await database.write { tx in
            guard let (env, state) = try tx.queryFirst(
                "SELECT environment_id, state FROM cleanup_jobs WHERE run_id = ? AND server_id = ?", [runID, serverID],
                { ($0.string(0), $0.string(1)) }), state == "PENDING"
            else { return }
            let archivedAt = try tx.queryFirst("SELECT archived_at FROM cleanup_runs WHERE run_id = ?", [runID]) { $0.int64(0) } ?? 0
            let required = Set(try tx.queryFirst(
                "SELECT required_currencies FROM environments WHERE environment_id = ?", [env], { $0.string(0) })?
                .split(separator: ",").map(String.init) ?? [])
            let tables = try tx.query(
                "SELECT \(EstateStore.tableColumns) FROM rgs_tables WHERE server_id = ? AND active = 1 ORDER BY table_id", [serverID],
                EstateStore.table)
            let trafficked = Set(try tx.query(
                """
                SELECT t.table_id FROM rgs_tables t JOIN ggr_aggregates g ON g.table_id = t.table_id
                WHERE t.server_id = ? GROUP BY t.table_id HAVING sum(g.rounds) > 0
                """, [serverID]) { $0.string(0) })
            let plan: CleanupPlan
            do {
                plan = try CleanupPlan.make(tables: tables, requiredCurrencies: required, trafficked: trafficked)
            } catch let e as RPCError {
                try tx.execute(
                    "UPDATE cleanup_jobs SET state = 'FAILED', failure = ? WHERE run_id = ? AND server_id = ?", [e.message, runID, serverID])
                return
            }
            for t in plan.toDelete { try tx.execute("DELETE FROM rgs_tables WHERE table_id = ?", [t.tableID]) }
            for t in plan.toArchive {
                try tx.execute("UPDATE rgs_tables SET active = 0, archived_at = ? WHERE table_id = ?", [archivedAt, t.tableID])
            }
            for (n, slice) in plan.slices.enumerated() {
                try tx.execute(
                    """
                    INSERT INTO cleanup_slices (request_id, run_id, server_id, action, bo_ids, archived_at, state)
                    VALUES (?, ?, ?, ?, ?, ?, 'PENDING')
                    """, ["\(runID)/\(serverID)/\(n)", runID, serverID, slice.action.rawValue, IDList.encode(slice.boIDs), archivedAt])
            }
            try tx.execute(
                "UPDATE cleanup_jobs SET state = ?, to_delete = ?, to_archive = ? WHERE run_id = ? AND server_id = ?",
                [plan.slices.isEmpty ? "NOTHING_TO_DO" : "SENDING", plan.toDelete.count, plan.toArchive.count, runID, serverID])
            tx.afterCommit { signal.signal() }
        }
    }

    func markFailed(runID: String, serverID: String, reason: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_jobs SET state = 'FAILED', failure = ? WHERE run_id = ? AND server_id = ? AND state = 'PENDING'",
                [reason, runID, serverID])
        }
    }

    // MARK: The outbox

    public func pendingSlices(limit: Int) async throws -> [CleanupSlice] {
        try await database.read { db in
            try db.query(
                """
                SELECT request_id, run_id, server_id, action, bo_ids, archived_at FROM cleanup_slices
                WHERE state = 'PENDING' ORDER BY request_id LIMIT ?
                """, [limit]
            ) { r in
                CleanupSlice(
                    requestID: r.string(0), runID: r.string(1), serverID: r.string(2), action: .init(rawValue: r.string(3)) ?? .archive,
                    boIDs: IDList.decode(r.string(4)), archivedAtMillis: r.int64(5))
            }
        }
    }

    /// Games accepted the slice; the job is DONE once all its slices are.
    func acknowledge(_ slice: CleanupSlice, operationID: String) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            try tx.execute(
                """
                UPDATE cleanup_slices SET state = 'ACKNOWLEDGED', operation_id = ?, attempts = attempts + 1, acknowledged_at = ?
                WHERE request_id = ? AND state = 'PENDING'
                """, [operationID, now, slice.requestID])
            try Self.settleJob(tx, slice)
        }
    }

    /// A delivery attempt failed and will be retried.
    func recordAttempt(_ slice: CleanupSlice, error: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_slices SET attempts = attempts + 1, last_error = ? WHERE request_id = ?", [error, slice.requestID])
        }
    }

    /// Games refused the slice for good; the server's job records why.
    func refuse(_ slice: CleanupSlice, error: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_slices SET state = 'FAILED', attempts = attempts + 1, last_error = ? WHERE request_id = ?",
                [error, slice.requestID])
            try tx.execute(
                "UPDATE cleanup_jobs SET failure = ? WHERE run_id = ? AND server_id = ?",
                ["Games refused slice \(slice.requestID): \(error)", slice.runID, slice.serverID])
            try Self.settleJob(tx, slice)
        }
    }

    static func settleJob(_ tx: Transaction, _ slice: CleanupSlice) throws {
        let open = try tx.queryFirst(
            "SELECT count(*) FROM cleanup_slices WHERE run_id = ? AND server_id = ? AND state = 'PENDING'",
            [slice.runID, slice.serverID]) { $0.int(0) } ?? 0
        guard open == 0 else { return }
        let refused = try tx.queryFirst(
            "SELECT count(*) FROM cleanup_slices WHERE run_id = ? AND server_id = ? AND state = 'FAILED'",
            [slice.runID, slice.serverID]) { $0.int(0) } ?? 0
        try tx.execute(
            "UPDATE cleanup_jobs SET state = ? WHERE run_id = ? AND server_id = ? AND state = 'SENDING'",
            [refused > 0 ? "FAILED" : "DONE", slice.runID, slice.serverID])
    }

    // MARK: Progress

    public func run(_ runID: String) async throws -> Croupier_Gametables_V1_CleanupRun {
        try await database.read { db in
            guard let (archivedAt, startedAt, skipped) = try db.queryFirst(
                "SELECT archived_at, started_at, skipped_environments FROM cleanup_runs WHERE run_id = ?", [runID],
                { ($0.int64(0), $0.int64(1), $0.string(2)) })
            else { throw RPCError(.notFound, "cleanup run \(runID) does not exist") }
            let jobs = try db.query(
                """
                SELECT j.environment_id, j.server_id, j.state, j.to_delete, j.to_archive, j.failure,
                    (SELECT count(*) FROM cleanup_slices s WHERE s.run_id = j.run_id AND s.server_id = j.server_id),
                    (SELECT count(*) FROM cleanup_slices s WHERE s.run_id = j.run_id AND s.server_id = j.server_id AND s.attempts > 0),
                    (SELECT count(*) FROM cleanup_slices s WHERE s.run_id = j.run_id AND s.server_id = j.server_id AND s.state = 'ACKNOWLEDGED')
                FROM cleanup_jobs j WHERE j.run_id = ? ORDER BY j.environment_id, j.position
                """, [runID]
            ) { r in
                (r.string(0), Croupier_Gametables_V1_ServerJob.with {
                    $0.serverId = r.string(1)
                    $0.state = RgsProto.state(r.string(2))
                    $0.toDelete = r.int64(3)
                    $0.toArchive = r.int64(4)
                    $0.failure = r.string(5)
                    $0.slices = r.int64(6)
                    $0.slicesSent = r.int64(7)
                    $0.slicesAcknowledged = r.int64(8)
                })
            }
            var operations: [String: [String]] = [:]
            for (server, op) in try db.query(
                "SELECT server_id, operation_id FROM cleanup_slices WHERE run_id = ? AND operation_id != '' ORDER BY request_id", [runID],
                { ($0.string(0), $0.string(1)) })
            {
                operations[server, default: []].append(op)
            }
            var environments: [Croupier_Gametables_V1_EnvironmentJob] = []
            for (env, var job) in jobs {
                job.operationIds = operations[job.serverId] ?? []
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

    /// A group's state: PENDING while any job waits, SENDING while any
    /// slice is owed, then FAILED if any job failed, else DONE.
    static func overall(_ states: [Croupier_Gametables_V1_JobState]) -> Croupier_Gametables_V1_JobState {
        if states.contains(.pending) { return .pending }
        if states.contains(.sending) { return .sending }
        if states.contains(.failed) { return .failed }
        return .done
    }
}
