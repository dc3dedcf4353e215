import Synchronization
import Wire

/// Drives cleanup runs: one task per (run, environment) works through that
/// environment's servers one after another (seed 003's chained jobs). A
/// server that fails is recorded and the chain moves on. Every step is a
/// committed job state, so after a crash `resume` picks each chain up at
/// its first PENDING server.
public final class CleanupRunner: Sendable {
    let runs: CleanupRunStore
    let log: @Sendable (String) -> Void
    private let active = Mutex<Set<String>>([])

    init(runs: CleanupRunStore, log: @escaping @Sendable (String) -> Void) {
        self.runs = runs
        self.log = log
    }

    /// Starts a chain for every environment with PENDING jobs (all runs, or one).
    public func resume(runID: String? = nil) async throws {
        for chain in try await runs.pendingChains() where runID == nil || chain.runID == runID {
            start(runID: chain.runID, environmentID: chain.environmentID)
        }
    }

    private func start(runID: String, environmentID: String) {
        let key = runID + "\u{0}" + environmentID
        guard active.withLock({ $0.insert(key).inserted }) else { return }
        Task { [self] in
            defer { _ = active.withLock { $0.remove(key) } }
            do {
                while let server = try await runs.nextJob(runID: runID, environmentID: environmentID) {
                    do {
                        if let refused = try await runs.process(runID: runID, serverID: server) {
                            failed(runID, server, refused)
                        }
                    } catch {
                        failed(runID, server, "\(error)")
                        try await runs.markFailed(runID: runID, serverID: server, reason: "\(error)")
                    }
                }
            } catch {
                log(GamesLog.line("cleanup_chain_stopped", service: "rgs", [
                    ("run_id", runID), ("environment_id", environmentID), ("error", "\(error)"), ("next", "resumes at the next start"),
                ]))
            }
        }
    }

    /// Every failed or refused server plan is logged with its server and reason; the chain moves on.
    private func failed(_ runID: String, _ serverID: String, _ reason: String) {
        log(GamesLog.line("cleanup_server_failed", service: "rgs", [("run_id", runID), ("server_id", serverID), ("reason", reason)]))
    }
}
