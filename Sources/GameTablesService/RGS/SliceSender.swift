import Synchronization
import Wire

/// Delivers the outbox to Games until each slice is accepted. A slice
/// carries its request id, so a retry after a lost answer (or after either
/// process died) returns Games' existing operation instead of applying the
/// slice twice. Transport failures back off exponentially (capped);
/// refusals (bad input) fail the slice for good and are reported on its job.
public final class SliceSender: Sendable {
    let runs: CleanupRunStore
    let games: Croupier_Gametables_V1_GamesCleanup.Client
    let log: @Sendable (String) -> Void
    let concurrency: Int
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(runs: CleanupRunStore, games: any RPCChannel, concurrency: Int = 8, log: @escaping @Sendable (String) -> Void) {
        self.runs = runs
        self.games = .init(channel: games)
        self.concurrency = concurrency
        self.log = log
    }

    public func start() {
        let runs = self.runs
        let t = drainLoop(
            signal: runs.slicesQueued, concurrency: concurrency,
            fetch: { (try? await runs.pendingSlices(limit: $0)) ?? [] }, work: { await self.send($0) })
        task.withLock { $0 = t }
    }

    public func stop() { task.withLock { $0?.cancel() } }

    /// The metadata Games records on the operation and its version rows: the run's caller.
    static func metadata(_ slice: CleanupSlice) -> Metadata {
        var metadata = Metadata()
        metadata.set(ForwardedCaller.principalKey, slice.actor.principal)
        slice.actor.request.propagate(into: &metadata)
        return metadata
    }

    /// False when the slice could not be delivered and will be retried. Under the run's request, as its log lines are.
    private func send(_ slice: CleanupSlice) async -> Bool {
        await slice.actor.request.run { await sendTraced(slice) }
    }

    private func sendTraced(_ slice: CleanupSlice) async -> Bool {
        let request = Croupier_Gametables_V1_CleanupGameTablesRequest.with {
            $0.requestId = slice.requestID
            $0.ids = slice.boIDs
            $0.action = slice.action == .delete ? .delete : .archive
            $0.archivedAtMs = slice.archivedAtMillis
            $0.async = true
            $0.runId = slice.runID
        }
        do {
            let op = try await games.cleanupGameTables(request, options: .timeout(.seconds(10), metadata: Self.metadata(slice)))
            try await runs.acknowledge(slice, operationID: op.operationId, status: GamesProto.status(op.status) ?? .received)
            return true
        } catch let e as RPCError where [.invalidArgument, .failedPrecondition, .notFound, .permissionDenied].contains(e.code) {
            log(GamesLog.line("cleanup_slice_refused", service: "rgs", [
                ("run_id", slice.runID), ("server_id", slice.serverID), ("request_id", slice.requestID), ("reason", e.description),
            ]))
            try? await runs.refuse(slice, error: e.description)
            return true
        } catch {
            try? await runs.recordAttempt(slice, error: "\(error)")
            return false
        }
    }
}
