import Foundation
import Storage
import Wire

/// Cleanup runs and their per-server jobs. The slice outbox and what Games
/// made of each slice live in SliceOutbox.swift, progress in RunProgress.swift.
///
/// A server's job: PENDING → SENDING (its plan is recorded and its slices
/// queued; no RGS table has changed yet) → DONE once every slice's Games
/// operation is DEFERRED and RGS applied its side, or FAILED (a refused
/// plan, a refused slice, a failed operation, ids Games does not have),
/// or NOTHING_TO_DO.
public struct CleanupRunStore: Sendable {
    let database: Database
    let clock: any StorageClock

    /// Raised after a commit that queued slices, so the sender wakes at once.
    var slicesQueued: ChangeSignal { database.signal("cleanup_slices") }
    /// Raised after Games accepted a slice, so the outcome watcher wakes at once.
    var slicesAccepted: ChangeSignal { database.signal("cleanup_outcomes") }

    /// Creates a run (one PENDING job per active server of every environment
    /// that has one) or returns the existing run with this id.
    /// Raised when a run is kicked off: wakes the runner, in whichever process drives runs.
    var kicked: ChangeSignal { database.signal("cleanup_runs") }

    public func kickoff(runID: String, actor: ChangeActor = .service) async throws -> String {
        let now = clock.nowMillis()
        let kicked = self.kicked
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
                """
                INSERT INTO cleanup_runs (run_id, archived_at, started_at, skipped_environments, principal, correlation_id, traceparent)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [runID, ArchiveTime.of(dayContaining: now), now, skipped.joined(separator: ","), actor.principal, actor.correlationID,
                 actor.traceparent])
            tx.wake(kicked)
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

    /// What planning one server's job came to.
    enum ServerPlan: Equatable {
        case planned(toDelete: Int, toArchive: Int, slices: Int)
        /// The plan was refused (the job is FAILED), for this reason.
        case refused(String)
        /// The job was no longer PENDING (another driver took it).
        case notPending
    }

    /// The call that kicked `runID` off: its correlation id and trace (empty: none kept, or no such run).
    func request(of runID: String) async throws -> RequestContext {
        try await database.read { db in
            try db.queryFirst("SELECT correlation_id, traceparent FROM cleanup_runs WHERE run_id = ?", [runID]) {
                RequestContext(correlationID: $0.string(0), traceparent: $0.string(1))
            }
        } ?? RequestContext()
    }

    /// Plans one server's cleanup in one transaction and queues its slices
    /// (each with the RGS tables it settles) in the outbox. No RGS table
    /// changes here: each slice's tables change once Games has applied it.
    /// A refused plan marks the job FAILED.
    func process(runID: String, serverID: String) async throws -> ServerPlan {
        let signal = slicesQueued
        return try await database.write { tx -> ServerPlan in
            guard let (env, state) = try tx.queryFirst(
                "SELECT environment_id, state FROM cleanup_jobs WHERE run_id = ? AND server_id = ?", [runID, serverID],
                { ($0.string(0), $0.string(1)) }), state == "PENDING"
            else { return .notPending }
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
                return .refused(e.message)
            }
            for (n, slice) in plan.slices.enumerated() {
                try tx.execute(
                    """
                    INSERT INTO cleanup_slices (request_id, run_id, server_id, action, bo_ids, archived_at, state, tables)
                    VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?)
                    """, ["\(runID)/\(serverID)/\(n)", runID, serverID, slice.action.rawValue, IDList.encode(slice.boIDs), archivedAt,
                          SliceTables.encode(slice.tables)])
            }
            try tx.execute(
                "UPDATE cleanup_jobs SET state = ?, to_delete = ?, to_archive = ? WHERE run_id = ? AND server_id = ?",
                [plan.slices.isEmpty ? "NOTHING_TO_DO" : "SENDING", plan.toDelete.count, plan.toArchive.count, runID, serverID])
            tx.wake(signal)
            return .planned(toDelete: plan.toDelete.count, toArchive: plan.toArchive.count, slices: plan.slices.count)
        }
    }

    func markFailed(runID: String, serverID: String, reason: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_jobs SET state = 'FAILED', failure = ? WHERE run_id = ? AND server_id = ? AND state = 'PENDING'",
                [reason, runID, serverID])
        }
    }
}
