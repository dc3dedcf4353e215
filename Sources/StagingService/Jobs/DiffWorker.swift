import Storage
import Synchronization
import Wire

/// Consumes the diff queue (one message at a time per game; games in
/// parallel). For each request it takes the game's diff lock, produces the
/// diff (full for IMPORT and operator requests, the one-entity fast path for
/// a MANUAL request naming an entity) and releases the lock in every outcome.
/// A busy diff lock (a deploy, or a dead holder's lease not yet run out) is a
/// wait: the request comes back after the retry base without using up a
/// receive. A request that fails is redelivered with backoff and
/// dead-lettered after 3 receives; one that was already produced (its message id is recorded
/// with the diff) is not produced again when redelivered after a crash.
final class DiffWorker: Sendable {
    struct LockBusy: Error, CustomStringConvertible {
        let game: String
        var description: String { "the diff lock of \(game) is held; retrying later" }
    }

    let requests: DiffRequests
    let diffs: DiffStore
    let locks: LockStore
    let leases: LeaseKeeper
    let concurrency: Int
    let retryBaseMillis: Int64
    let log: @Sendable (String) -> Void
    /// Diffs stored, timed from the lock being taken.
    let produced: DurationHistogram
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(requests: DiffRequests, diffs: DiffStore, locks: LockStore, leases: LeaseKeeper, concurrency: Int = 2,
         retryBaseMillis: Int64 = 1_000, produced: DurationHistogram = DurationHistogram(), log: @escaping @Sendable (String) -> Void) {
        self.produced = produced
        self.requests = requests
        self.diffs = diffs
        self.locks = locks
        self.leases = leases
        self.concurrency = concurrency
        self.retryBaseMillis = retryBaseMillis
        self.log = log
    }

    func start() {
        let consumer = QueueConsumer(
            queue: requests.queue, concurrency: concurrency, retryBaseMillis: retryBaseMillis, report: log
        ) { [self] message in try await handle(message) }
        task.withLock { $0 = Task { await consumer.run() } }
    }

    func stop() { task.withLock { $0?.cancel() } }

    func handle(_ message: ReceivedMessage) async throws {
        guard let request = try? Croupier_Staging_V1_EnqueueDiffRequest(serializedBytes: message.body) else {
            log("diff request \(message.id) is not decodable; dropped")
            return
        }
        // Under the call that asked for it (an import's upload, an override, GenerateDiff): its correlation id and trace.
        try await DiffRequests.context(of: message).run { try await handleTraced(message, request) }
    }

    private func handleTraced(_ message: ReceivedMessage, _ request: Croupier_Staging_V1_EnqueueDiffRequest) async throws {
        let game = request.gameSlug
        let holder = "diff-\(message.id)"
        let locks = self.locks
        guard try await diffs.database.write({ tx in try locks.acquire(tx, game: game, .diff, holder: holder) }) else {
            // A deploy (or a dead holder's lease) has the lock: wait, without using up a receive.
            throw QueueConsumer.Postpone(delayMillis: retryBaseMillis, reason: LockBusy(game: game).description)
        }
        let held = LeaseKeeper.Held(game: game, kind: .diff, holder: holder)
        leases.hold(held)
        defer { leases.drop(held) }
        let started = ContinuousClock.now
        do {
            let hasBase = try await diffs.database.read { db in
                try db.queryFirst("SELECT 1 FROM diffs WHERE game_slug = ?", [game], { _ in true }) != nil
            }
            if request.trigger == .manual && !request.entitySlug.isEmpty && hasBase {
                try await diffs.patchEntity(
                    game: game, type: request.entityType, slug: request.entitySlug, request: request, messageID: message.id, lockHolder: holder,
                    started: started)
            } else {
                try await diffs.storeFull(game: game, request: request, messageID: message.id, lockHolder: holder, started: started)
            }
            produced.observe(since: started)
            log(JSONLine.event(service: "staging", "diff_produced", [
                ("game", game), ("trigger", request.trigger == .import ? "IMPORT" : "MANUAL"), ("import_run_id", request.importRunId),
                ("message_id", String(message.id)),
            ]))
        } catch {
            try? await locks.release(game: game, .diff, holder: holder)
            throw error
        }
        // Normally released with the stored diff already; this covers a request that was already done.
        try await locks.release(game: game, .diff, holder: holder)
    }
}
