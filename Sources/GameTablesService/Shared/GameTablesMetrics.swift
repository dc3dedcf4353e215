import Storage
import Wire

/// What an operator of the cleanup pages on, for the gateway's /metrics.
/// Games (`croupier_games_*`): operations not yet final, by status; how long
/// an operation takes from its start to its commit; the runtime consumer's
/// lag. RGS (`croupier_rgs_*`): the outbox of slices not yet acknowledged by
/// Games, server jobs not yet final, and how long planning a server's
/// cleanup takes. Counts come from the database, so every replica agrees.
public final class GameTablesMetrics: Sendable {
    let operationDuration = DurationHistogram()
    let planDuration = DurationHistogram()

    public init() {}

    func renderGames(database: Database, runtime: RuntimeStore) async throws -> ServiceFigures {
        var figures = ServiceFigures()
        let counts = try await Self.counts(database, "SELECT status, COUNT(*) FROM operations WHERE status IN ('RECEIVED', 'IN_PROGRESS', 'DEFERRED') GROUP BY status")
        figures.database.metric("croupier_games_operations", .gauge, "Cleanup operations not yet final, by status (DEFERRED: archived, waiting for a purge).")
        for status in ["RECEIVED", "IN_PROGRESS", "DEFERRED"] {
            figures.database.sample("croupier_games_operations", [("status", status.lowercased())], Double(counts[status] ?? 0))
        }
        let c = try await runtime.consumerStatus()
        figures.database.single("croupier_games_runtime_consumer_lag", .gauge, "Runtime events not yet consumed.", Double(c.lag))
        figures.database.single("croupier_games_runtime_consumer_offset", .gauge, "The last runtime event consumed.", Double(c.offset))
        figures.database.single("croupier_games_runtime_events_skipped", .gauge, "Runtime events skipped as undecodable, since the start.", Double(c.skipped))
        operationDuration.render(into: &figures.process, "croupier_games_operation_duration_seconds", "Time from an operation's start to its commit.")
        return figures
    }

    func renderRgs(database: Database) async throws -> ServiceFigures {
        var figures = ServiceFigures()
        let slices = try await Self.counts(database, "SELECT state, COUNT(*) FROM cleanup_slices WHERE state = 'PENDING' GROUP BY state")
        figures.database.single("croupier_rgs_outbox_backlog", .gauge, "Slices written to the outbox and not yet acknowledged by Games.", Double(slices["PENDING"] ?? 0))
        let jobs = try await Self.counts(database, "SELECT state, COUNT(*) FROM cleanup_jobs WHERE state IN ('PENDING', 'SENDING') GROUP BY state")
        figures.database.metric("croupier_rgs_cleanup_jobs", .gauge, "Server cleanup jobs not yet final, by state.")
        for state in ["PENDING", "SENDING"] {
            figures.database.sample("croupier_rgs_cleanup_jobs", [("state", state.lowercased())], Double(jobs[state] ?? 0))
        }
        planDuration.render(into: &figures.process, "croupier_rgs_cleanup_plan_duration_seconds", "Time to plan one server's cleanup and write its slices.")
        return figures
    }

    private static func counts(_ database: Database, _ sql: String) async throws -> [String: Int] {
        let rows = try await database.read { db in try db.query(sql, []) { ($0.string(0), $0.int(1)) } }
        return Dictionary(rows, uniquingKeysWith: +)
    }
}
