import Synchronization
import Wire

/// Delivers the outbox to Games until each slice is acknowledged. A slice
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
        let t = Task { [self] in
            let signal = runs.slicesQueued
            var backoff: Duration = .milliseconds(100)
            while !Task.isCancelled {
                let generation = signal.generation
                let slices = (try? await runs.pendingSlices(limit: concurrency * 4)) ?? []
                if slices.isEmpty {
                    await signal.wait(since: generation, timeout: .seconds(1))
                    continue
                }
                let failures = await deliver(slices)
                if failures > 0 {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                } else {
                    backoff = .milliseconds(100)
                }
            }
        }
        task.withLock { $0 = t }
    }

    public func stop() { task.withLock { $0?.cancel() } }

    /// Sends `slices` with `concurrency` in flight; returns how many failed in transport.
    func deliver(_ slices: [CleanupSlice]) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            var next = 0
            var failures = 0
            func add() {
                guard next < slices.count else { return }
                let slice = slices[next]
                next += 1
                group.addTask { await self.send(slice) ? 0 : 1 }
            }
            for _ in 0..<concurrency { add() }
            for await failed in group {
                failures += failed
                add()
            }
            return failures
        }
    }

    private func send(_ slice: CleanupSlice) async -> Bool {
        let request = Croupier_Gametables_V1_CleanupGameTablesRequest.with {
            $0.requestId = slice.requestID
            $0.ids = slice.boIDs
            $0.action = slice.action == .delete ? .delete : .archive
            $0.archivedAtMs = slice.archivedAtMillis
            $0.async = true
        }
        var metadata = Metadata()
        metadata.set("x-croupier-principal", "rgs")
        do {
            let op = try await games.cleanupGameTables(request, options: .timeout(.seconds(10), metadata: metadata))
            try await runs.acknowledge(slice, operationID: op.operationId)
            return true
        } catch let e as RPCError where [.invalidArgument, .failedPrecondition, .notFound, .permissionDenied].contains(e.code) {
            log("Games refused slice \(slice.requestID): \(e)")
            try? await runs.refuse(slice, error: e.description)
            return true
        } catch {
            try? await runs.recordAttempt(slice, error: "\(error)")
            return false
        }
    }
}
