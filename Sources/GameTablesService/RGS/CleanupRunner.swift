import Synchronization
import Wire

/// Drives cleanup runs: one task per (run, environment) works through that
/// environment's servers one after another (seed 003's chained jobs). A
/// server that fails is recorded and the chain moves on. Every step is a
/// committed job state, so after a crash `resume` picks each chain up at
/// its first PENDING server. It runs in one process at a time (RgsRole's
/// "rgs.chain" singleton), which `run` keeps resuming as runs are kicked off
/// in any replica.
public final class CleanupRunner: Sendable {
    let runs: CleanupRunStore
    let log: @Sendable (String) -> Void
    /// Server plans made here, timed.
    let planned: DurationHistogram
    /// Chains running here, by (run, environment).
    private let active = Mutex<[String: Task<Void, Never>]>([:])

    init(runs: CleanupRunStore, planned: DurationHistogram = DurationHistogram(), log: @escaping @Sendable (String) -> Void) {
        self.planned = planned
        self.runs = runs
        self.log = log
    }

    /// Starts a chain for every environment with PENDING jobs (all runs, or one).
    public func resume(runID: String? = nil) async throws {
        for chain in try await runs.pendingChains() where runID == nil || chain.runID == runID {
            start(runID: chain.runID, environmentID: chain.environmentID)
        }
    }

    /// Resumes every run now and whenever one is kicked off, until cancelled;
    /// then stops the chains (each picks up at its next job wherever runs are driven next).
    func run() async {
        let kicked = runs.kicked
        while !Task.isCancelled {
            let generation = kicked.generation
            do { try await resume() } catch { log("cleanup runs could not resume: \(error)") }
            await kicked.wait(since: generation, timeout: .seconds(5))
        }
        for task in active.withLock({ Array($0.values) }) { task.cancel() }
    }

    private func start(runID: String, environmentID: String) {
        let key = runID + "\u{0}" + environmentID
        active.withLock { a in
            guard a[key] == nil else { return }
            a[key] = Task { [self] in
                await chain(runID: runID, environmentID: environmentID)
                _ = active.withLock { $0.removeValue(forKey: key) }
            }
        }
    }

    /// Under the kickoff's correlation id and trace: every line of the chain follows the call that started the run.
    private func chain(runID: String, environmentID: String) async {
        let request = (try? await runs.request(of: runID)) ?? RequestContext()
        await request.run { await chainTraced(runID: runID, environmentID: environmentID) }
    }

    private func chainTraced(runID: String, environmentID: String) async {
        do {
            while !Task.isCancelled, let server = try await runs.nextJob(runID: runID, environmentID: environmentID) {
                do {
                    let began = ContinuousClock.now
                    let outcome = try await runs.process(runID: runID, serverID: server)
                    planned.observe(since: began)
                    switch outcome {
                    case .planned(let toDelete, let toArchive, let slices):
                        log(GamesLog.line("cleanup_server_planned", service: "rgs", [
                            ("run_id", runID), ("server_id", server), ("to_delete", String(toDelete)), ("to_archive", String(toArchive)),
                            ("slices", String(slices)),
                        ]))
                    case .refused(let reason): failed(runID, server, reason)
                    case .notPending: break
                    }
                } catch is CancellationError {
                    return  // this process stopped driving runs: the job stays PENDING for the next driver
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

    /// Every failed or refused server plan is logged with its server and reason; the chain moves on.
    private func failed(_ runID: String, _ serverID: String, _ reason: String) {
        log(GamesLog.line("cleanup_server_failed", service: "rgs", [("run_id", runID), ("server_id", serverID), ("reason", reason)]))
    }
}
