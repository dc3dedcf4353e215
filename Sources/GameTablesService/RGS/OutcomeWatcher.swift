import Synchronization
import Wire

/// Learns the final outcome of every Games operation RGS started and makes
/// RGS agree with it (`CleanupRunStore.settle`). Each accepted slice is
/// watched with a long-polling GetOperation (Games answers as soon as the
/// operation is final), a few at a time; transport failures back off. The
/// watch list is the database, so after a crash of either side it resumes.
public final class OutcomeWatcher: Sendable {
    let runs: CleanupRunStore
    let games: Croupier_Gametables_V1_GamesCleanup.Client
    let log: @Sendable (String) -> Void
    let concurrency: Int
    let wait: Duration
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(runs: CleanupRunStore, games: any RPCChannel, concurrency: Int = 16, wait: Duration = .seconds(5),
         log: @escaping @Sendable (String) -> Void) {
        self.runs = runs
        self.games = .init(channel: games)
        self.concurrency = concurrency
        self.wait = wait
        self.log = log
    }

    public func start() {
        let runs = self.runs
        let t = drainLoop(
            signal: runs.slicesAccepted, concurrency: concurrency,
            fetch: { (try? await runs.awaitingOutcome(limit: $0)) ?? [] }, work: { await self.watch($0) })
        task.withLock { $0 = t }
    }

    public func stop() { task.withLock { $0?.cancel() } }

    /// One long poll of the slice's operation; false on a transport failure.
    func watch(_ slice: CleanupSlice) async -> Bool {
        let waitMillis = Int32(wait.components.seconds * 1000)
        do {
            let op = try await games.getOperation(
                .with {
                    $0.operationId = slice.operationID
                    $0.waitMs = waitMillis
                }, options: .timeout(wait + .seconds(5), metadata: SliceSender.metadata(slice)))
            guard let status = GamesProto.status(op.status) else { return true }
            guard status == .deferred || status == .processed || status == .failed else {
                try await runs.noteStatus(slice, status)
                return true
            }
            let outcome = GamesOutcome(status: status, affectedIDs: op.affectedIds, missingIDs: op.missingIds, failure: op.failure)
            if try await runs.settle(slice, outcome) { report(slice, outcome) }
            return true
        } catch {
            try? await runs.recordAttempt(slice, error: "\(error)")
            return false
        }
    }

    /// Under the run's request, so a failure names the call that started the run.
    private func report(_ slice: CleanupSlice, _ outcome: GamesOutcome) {
        slice.actor.request.run { reportTraced(slice, outcome) }
    }

    private func reportTraced(_ slice: CleanupSlice, _ outcome: GamesOutcome) {
        let fields = [("run_id", slice.runID), ("server_id", slice.serverID), ("request_id", slice.requestID), ("operation_id", slice.operationID)]
        if outcome.status == .failed {
            log(GamesLog.line("cleanup_operation_failed_on_games", service: "rgs", fields + [("reason", outcome.failure)]))
        } else if !outcome.missingIDs.isEmpty {
            log(GamesLog.line("cleanup_ids_missing_on_games", service: "rgs", fields + [
                ("missing_ids", IDList.encode(outcome.missingIDs)),
                ("effect", "their RGS tables were left as they were"),
            ]))
        }
    }
}
