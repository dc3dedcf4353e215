import Storage
import Synchronization
import Wire

/// Applies runtime events in stream order from a stored offset (seed 002).
///
/// Each batch of events is one transaction that also saves the offset, and
/// each event runs in its own savepoint, so:
/// - the offset advances only past events that are fully handled; an event
///   whose handling throws (e.g. capability evaluation failing transiently)
///   is rolled back alone, the offset stays before it, and it is retried;
/// - a crash at any point replays from the last committed offset, and the
///   handlers are replay-safe anyway: snapshots overwrite, initial stats are
///   written once and maxima only rise, the finish is a compare-and-set,
///   evaluation has a one-row-per-game guard;
/// - undecodable events are logged, counted and skipped (the offset moves
///   on); the count is saved with the offset, so it covers the whole stream.
public final class RuntimeConsumer: Sendable {
    let store: RuntimeStore
    let evaluator: any CapabilityEvaluator
    let log: @Sendable (String) -> Void
    let batchSize: Int
    let retryDelay: Duration
    private let task = Mutex<Task<Void, Never>?>(nil)

    public init(store: RuntimeStore, evaluator: any CapabilityEvaluator = StandingsEvaluator(), batchSize: Int = 512,
                retryDelay: Duration = .milliseconds(200), log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.evaluator = evaluator
        self.batchSize = batchSize
        self.retryDelay = retryDelay
        self.log = log
    }

    public func start() {
        let signal = store.database.signal("events")
        let t = Task { [self] in
            while !Task.isCancelled {
                let generation = signal.generation
                do {
                    let (handled, blocked) = try await drainOnce()
                    if blocked { try await Task.sleep(for: retryDelay) } else if handled == 0 {
                        await signal.wait(since: generation, timeout: .milliseconds(500))
                    }
                } catch is CancellationError {
                    return
                } catch {
                    log(Self.line("runtime_consumer_error", "", [("error", "\(error)")]))
                    try? await Task.sleep(for: retryDelay)
                }
            }
        }
        task.withLock { $0 = t }
    }

    public func stop() { task.withLock { $0?.cancel() } }

    /// Handles one batch after the stored offset. `blocked` means an event
    /// failed and the offset waits before it.
    @discardableResult
    public func drainOnce() async throws -> (handled: Int, blocked: Bool) {
        let offset = try await store.offsets.load(RuntimeStore.consumerName) ?? 0
        let events = try await store.events.read(after: offset, limit: batchSize, stream: RuntimeStore.stream)
        if events.isEmpty { return (0, false) }
        let evaluator = self.evaluator
        let offsets = store.offsets
        let lines = LineBuffer()
        let (handled, blocked, _) = try await store.database.write { tx -> (Int, Bool, Int) in
            var last = offset
            var handled = 0
            var skipped = 0
            var blocked = false
            for e in events {
                try tx.execute("SAVEPOINT runtime_event")
                let mark = lines.count
                do {
                    if try !Self.handle(tx, e, evaluator: evaluator, lines: lines) { skipped += 1 }
                    try tx.execute("RELEASE runtime_event")
                    last = e.offset
                    handled += 1
                } catch {
                    try tx.execute("ROLLBACK TO runtime_event")
                    try tx.execute("RELEASE runtime_event")
                    lines.truncate(to: mark)
                    lines.append(Self.line("runtime_event_retry", "", [("entry_id", String(e.offset)), ("error", "\(error)")]))
                    blocked = true
                    break
                }
            }
            if last > offset { try offsets.save(tx, name: RuntimeStore.consumerName, offset: last) }
            if skipped > 0 { try RuntimeStore.countSkipped(tx, skipped) }
            return (handled, blocked, skipped)
        }
        for l in lines.all { log(l) }
        return (handled, blocked)
    }

    /// Applies one event; false when it was undecodable and skipped.
    static func handle(_ tx: Transaction, _ stored: StoredEvent, evaluator: any CapabilityEvaluator, lines: LineBuffer) throws -> Bool {
        let event: DecodedRuntimeEvent
        do {
            let raw = try Croupier_Gametables_V1_RuntimeEvent(serializedBytes: stored.payload)
            event = try RuntimeEventDecoder.decode(kind: raw.kind, fields: raw.fields)
        } catch {
            lines.append(line("runtime_event_skipped", "", [("entry_id", String(stored.offset)), ("error", "\(error)")]))
            return false
        }
        let changed = try tx.execute(
            """
            UPDATE games SET current_turn = ?, runtime_status = ?, engine_health_summary = ?, snapshot_updated_at = ?
            WHERE game_id = ?
            """, [event.currentTurn, event.runtimeStatus, event.engineHealthSummary, stored.createdAtMillis, event.gameID])
        if changed == 0 {
            lines.append(line("runtime_snapshot_for_unknown_game", event.gameID, [("entry_id", String(stored.offset))]))
        }
        for p in event.playerStats {
            // Initial values are frozen by the first insert; maxima only rise; the last observation is kept.
            try tx.execute(
                """
                INSERT INTO player_stats (game_id, user_id, initial_planets, initial_population, initial_ships_built,
                    max_planets, max_population, max_ships_built, last_planets, last_population, last_ships_built)
                VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?4, ?5, ?3, ?4, ?5)
                ON CONFLICT (game_id, user_id) DO UPDATE SET max_planets = max(player_stats.max_planets, excluded.max_planets),
                    max_population = max(player_stats.max_population, excluded.max_population),
                    max_ships_built = max(player_stats.max_ships_built, excluded.max_ships_built),
                    last_planets = excluded.last_planets, last_population = excluded.last_population,
                    last_ships_built = excluded.last_ships_built
                """,
                [event.gameID, p.userID, p.planets, p.population, p.shipsBuilt])
        }
        if event.kind == .gameFinished { try finish(tx, event, stored, evaluator: evaluator, lines: lines) }
        return true
    }

    static func finish(
        _ tx: Transaction, _ event: DecodedRuntimeEvent, _ stored: StoredEvent, evaluator: any CapabilityEvaluator, lines: LineBuffer
    ) throws {
        let entry = ("entry_id", String(stored.offset))
        guard let status = try tx.queryFirst("SELECT status FROM games WHERE game_id = ?", [event.gameID], { $0.string(0) }) else {
            lines.append(line("game_finished_for_unknown_game", event.gameID, [entry]))
            return
        }
        switch status {
        case "RUNNING", "PAUSED":
            // Compare-and-set: only from the status just read.
            let moved = try tx.execute(
                "UPDATE games SET status = 'FINISHED', finished_at = ? WHERE game_id = ? AND status = ?",
                [event.finishedAtMillis ?? stored.createdAtMillis, event.gameID, status])
            lines.append(line(moved > 0 ? "game_finished" : "game_finished_absorbed", event.gameID, [entry, ("from_status", status)]))
        case "FINISHED":
            lines.append(line("game_finished_replay", event.gameID, [entry]))
        default:
            return
        }
        guard let finishedAt = try tx.queryFirst(
            "SELECT finished_at FROM games WHERE game_id = ?", [event.gameID], { $0.optionalInt64(0) }) ?? nil
        else { return }
        // The replay guard: evaluation runs once per game.
        let first = try tx.execute(
            "INSERT OR IGNORE INTO evaluations (game_id, finished_at, evaluated_at) VALUES (?, ?, ?)",
            [event.gameID, finishedAt, stored.createdAtMillis])
        guard first > 0 else { return }
        try evaluator.evaluate(tx, gameID: event.gameID, finishedAtMillis: finishedAt)
        lines.append(line("capability_evaluated", event.gameID, [entry]))
    }

    static func line(_ event: String, _ gameID: String, _ fields: [(String, String)]) -> String {
        GamesLog.line(event, [("game_id", gameID)] + fields)
    }
}

/// Log lines gathered inside a transaction, written once it has committed.
final class LineBuffer: Sendable {
    private let lines = Mutex<[String]>([])
    var count: Int { lines.withLock { $0.count } }
    var all: [String] { lines.withLock { $0 } }
    func append(_ l: String) { lines.withLock { $0.append(l) } }
    func truncate(to n: Int) { lines.withLock { $0.removeSubrange(n...) } }
}
