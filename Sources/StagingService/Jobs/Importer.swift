import Storage
import Synchronization
import Wire

/// Merges uploaded import runs into staging, at most `maxConcurrent` at a
/// time across games (the others wait as queued), then asks the DiffQueue
/// for a diff over Wire.
///
/// Crash safety: merge pages are idempotent upserts and the run's end
/// (removals, SUCCEEDED, lock release) is one transaction, so a run that was
/// RUNNING when the process died is merged again from its stored upload; a
/// run still RECEIVING has no complete upload and fails cleanly. The diff
/// request is recorded on the run once the DiffQueue acknowledged it, and
/// re-sent until then (the run id makes a repeat a duplicate, not a second diff).
final class Importer: Sendable {
    let store: ImportStore
    let leases: LeaseKeeper
    let maxConcurrent: Int
    let pageSize: Int
    let progressInterval: Duration
    let log: @Sendable (String) -> Void
    private let diffQueue = Mutex<Croupier_Staging_V1_DiffQueue.Client?>(nil)
    /// Merges under way, by run: at most `maxConcurrent`, cancelled by `stop`.
    private let running = Mutex<[String: Task<Void, Never>]>([:])
    /// A run was queued (in any replica) or a merge slot freed up.
    private var wakeSignal: ChangeSignal { store.queued }
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// Merges that succeeded, timed from their start.
    let merged: DurationHistogram

    init(store: ImportStore, leases: LeaseKeeper, maxConcurrent: Int = 2, pageSize: Int = 2_000,
         progressInterval: Duration = .milliseconds(500), merged: DurationHistogram = DurationHistogram(),
         log: @escaping @Sendable (String) -> Void) {
        self.merged = merged
        self.store = store
        self.leases = leases
        self.maxConcurrent = maxConcurrent
        self.pageSize = pageSize
        self.progressInterval = progressInterval
        self.log = log
    }

    /// Recovers what a previous process left, then merges queued runs as
    /// slots free up. `abandonReceiving`: every upload still RECEIVING was
    /// this process's and is over (a database no other process shares);
    /// otherwise only orphaned ones are, as they are found (`ImportStore.abandonOrphanedUploads`).
    func start(diffQueue channel: any RPCChannel, abandonReceiving: Bool = true) async throws {
        diffQueue.withLock { $0 = .init(channel: channel) }
        if abandonReceiving {
            for (run, _) in try await store.runs(status: "RECEIVING") {
                try await store.abandon(runID: run, reason: "the upload was interrupted (the service restarted)")
            }
        }
        for (run, game) in try await store.runs(status: "QUEUED") {
            leases.hold(.init(game: game, kind: .importLock, holder: run))
        }
        let t = Task { [self] in
            while !Task.isCancelled {
                let generation = wakeSignal.generation
                await schedule()
                await deliverDiffRequests()
                await wakeSignal.wait(since: generation, timeout: .seconds(1))
            }
        }
        task.withLock { $0 = t }
    }

    /// Stops scheduling and cancels running merges; their runs stay RUNNING and merge again at the next start.
    func stop() {
        task.withLock { $0?.cancel() }
        running.withLock { $0.values.forEach { $0.cancel() } }
    }

    func wake() { wakeSignal.signal() }

    private func schedule() async {
        do {
            let candidates = try await store.runs(status: "RUNNING") + store.runs(status: "QUEUED")
            for (run, game) in candidates where !Task.isCancelled {
                running.withLock { r in
                    guard r.count < maxConcurrent, r[run] == nil else { return }
                    r[run] = Task { [self] in
                        await merge(runID: run, game: game)
                        _ = running.withLock { $0.removeValue(forKey: run) }
                        wake()
                    }
                }
            }
        } catch {
            log("import scheduling failed: \(error)")
        }
    }

    private func merge(runID: String, game: String) async {
        // Under the upload's correlation id and trace: its log lines, and the diff request it leads to, follow the same request.
        let request = (try? await store.request(of: runID)) ?? RequestContext()
        await request.run { await mergeTraced(runID: runID, game: game) }
    }

    private func mergeTraced(runID: String, game: String) async {
        let held = LeaseKeeper.Held(game: game, kind: .importLock, holder: runID)
        defer { leases.drop(held) }
        do {
            guard try await store.startMerge(runID: runID, game: game) else { return }
            leases.hold(held)  // once the lock is the run's: the keeper lets go of a lock its holder does not have
            let began = ContinuousClock.now
            var overrides = ImportStore.OverrideSnapshot()
            let total = try await store.run(runID).entitiesReceived
            var after = 0
            var merged = 0
            var progress = ProgressThrottle(interval: progressInterval)
            while true {
                try Task.checkCancellation()
                let page = try await store.importData(runID: runID, afterSeq: after, limit: pageSize)
                guard let last = page.last else { break }
                merged += page.count
                after = last.seq
                // The report rides in the page's own transaction: no extra commit.
                let report = progress.due(done: merged) ? "merged \(merged)/\(total)" : nil
                overrides = try await store.mergePage(runID: runID, game: game, page, overrides: overrides, progress: report)
            }
            try await store.finishMerge(runID: runID, game: game)
            self.merged.observe(since: began)
            log(JSONLine.event(service: "staging", "import_merged", [("import_run_id", runID), ("game", game), ("entities", String(merged))]))
        } catch is CancellationError {
            // Stopping: the run stays RUNNING and is merged again at the next start.
        } catch StorageError.closed {
            // The database closed under the merge (stopping): the same.
        } catch {
            log("import \(runID) of \(game) failed: \(error)")
            try? await store.abandon(runID: runID, reason: "merge failed: \(error)")
        }
    }

    /// Sends each finished run's diff request to the DiffQueue (over Wire) until acknowledged.
    private func deliverDiffRequests() async {
        guard let client = diffQueue.withLock({ $0 }), let owing = try? await store.runsOwingDiff() else { return }
        for (run, game, request) in owing {
            do {
                var options = CallOptions.timeout(.seconds(5))
                request.propagate(into: &options.metadata)
                let r = try await client.enqueueDiff(.with {
                    $0.gameSlug = game
                    $0.trigger = .import
                    $0.importRunId = run
                }, options: options)
                try await store.recordDiffRequest(runID: run, messageID: r.messageId)
            } catch {
                log("diff request for import \(run) not delivered yet: \(error)")
                return
            }
        }
    }
}
