import Storage
import Wire

/// What an operator of staging pages on (`croupier_staging_*`, scraped by
/// the gateway for /metrics): the diff queue (depth, in flight, oldest
/// age, dead letters), the import queue (runs waiting and merging), and how
/// long merges, diffs and deploys take. Label values are fixed sets. The
/// queues and runs are read from the database (every replica agrees); the
/// durations are this process's.
public final class StagingMetrics: Sendable {
    let importDuration = DurationHistogram()
    let diffDuration = DurationHistogram()
    let deployDuration = DurationHistogram()

    public init() {}

    func render(queue: DurableQueue, database: Database) async throws -> ServiceFigures {
        var figures = ServiceFigures()
        let q = try await queue.stats()
        let runs = try await database.read { db in
            try db.query("SELECT status, COUNT(*) FROM import_runs WHERE status IN ('RECEIVING', 'QUEUED', 'RUNNING') GROUP BY status", []) {
                ($0.string(0), $0.int(1))
            }
        }
        let counts = Dictionary(runs, uniquingKeysWith: +)
        figures.database.metric("croupier_staging_queue_depth", .gauge, "Messages waiting to be delivered, per queue.")
        figures.database.sample("croupier_staging_queue_depth", [("queue", "diff")], Double(q.depth))
        figures.database.metric("croupier_staging_queue_in_flight", .gauge, "Messages a worker holds, per queue.")
        figures.database.sample("croupier_staging_queue_in_flight", [("queue", "diff")], Double(q.inFlight))
        figures.database.metric("croupier_staging_queue_oldest_age_seconds", .gauge, "Age of the oldest message not yet done, per queue.")
        figures.database.sample("croupier_staging_queue_oldest_age_seconds", [("queue", "diff")], Double(q.oldestAgeMillis) / 1000)
        figures.database.metric("croupier_staging_queue_dead_letters", .gauge, "Messages dead-lettered and not redriven, per queue.")
        figures.database.sample("croupier_staging_queue_dead_letters", [("queue", "diff")], Double(q.deadLetters))
        figures.database.metric("croupier_staging_queue_paused", .gauge, "1 while an operator has paused the queue (nothing is delivered), per queue.")
        figures.database.sample("croupier_staging_queue_paused", [("queue", "diff")], q.pause == nil ? 0 : 1)
        figures.database.metric("croupier_staging_import_runs", .gauge, "Import runs not finished, by state (receiving their upload, queued for a merge, merging).")
        for state in ["RECEIVING", "QUEUED", "RUNNING"] {
            figures.database.sample("croupier_staging_import_runs", [("state", state.lowercased())], Double(counts[state] ?? 0))
        }
        importDuration.render(into: &figures.process, "croupier_staging_import_merge_duration_seconds", "Time from a merge's start to its end (succeeded merges).")
        diffDuration.render(into: &figures.process, "croupier_staging_diff_duration_seconds", "Time to produce a diff, full or one entity's.")
        deployDuration.render(into: &figures.process, "croupier_staging_deploy_duration_seconds", "Time from a deploy's start to its swap into production.")
        return figures
    }
}
