import Storage
import Wire

/// Games, their runtime snapshots and stats, and the durable runtime event
/// stream (the Games database's event log, stream `runtime`).
public struct RuntimeStore: Sendable {
    static let stream = "runtime"
    static let consumerName = "runtime_consumer"
    let database: Database
    let events: EventLog
    let offsets: OffsetStore
    let clock: any StorageClock

    public init(database: Database, clock: any StorageClock) {
        self.database = database
        self.clock = clock
        events = EventLog(database: database, clock: clock)
        offsets = OffsetStore(database: database, clock: clock)
    }

    public func register(_ gameID: String, paused: Bool) async throws -> Croupier_Gametables_V1_Game {
        guard GameID.isValid(gameID) else { throw RPCError(.invalidArgument, "game_id must be 1–128 characters without spaces") }
        let now = clock.nowMillis()
        try await database.write { tx in
            try tx.execute(
                "INSERT OR IGNORE INTO games (game_id, status, registered_at) VALUES (?, ?, ?)",
                [gameID, paused ? "PAUSED" : "RUNNING", now])
        }
        return try await game(gameID)
    }

    /// Appends events in order; returns their entry ids.
    public func publish(_ events: [Croupier_Gametables_V1_RuntimeEvent]) async throws -> [Int64] {
        let log = self.events
        return try await database.write { tx in
            try events.map { e in try log.append(tx, stream: Self.stream, type: e.kind, payload: e.serializedBytes()) }
        }
    }

    public func game(_ gameID: String) async throws -> Croupier_Gametables_V1_Game {
        try await database.read { db in
            guard var game = try db.queryFirst(
                """
                SELECT game_id, status, current_turn, runtime_status, engine_health_summary, snapshot_updated_at, finished_at
                FROM games WHERE game_id = ?
                """, [gameID], { r in
                    Croupier_Gametables_V1_Game.with {
                        $0.gameId = r.string(0)
                        $0.status = r.string(1) == "FINISHED" ? .finished : r.string(1) == "PAUSED" ? .paused : .running
                        $0.snapshot = .with { s in
                            s.currentTurn = r.int64(2)
                            s.runtimeStatus = r.string(3)
                            s.engineHealthSummary = r.string(4)
                            s.updatedAtMs = r.int64(5)
                        }
                        $0.finishedAtMs = r.optionalInt64(6) ?? 0
                    }
                })
            else { throw RPCError(.notFound, "game \(gameID) is not registered") }
            game.evaluated = try db.queryFirst("SELECT 1 FROM evaluations WHERE game_id = ?", [gameID]) { _ in true } ?? false
            game.standings = try db.query(
                "SELECT user_id, rank, planets, population, ships_built FROM standings WHERE game_id = ? ORDER BY rank", [gameID]
            ) { r in
                .with {
                    $0.userId = r.string(0)
                    $0.rank = Int32(r.int(1))
                    $0.planets = r.int64(2)
                    $0.population = r.int64(3)
                    $0.shipsBuilt = r.int64(4)
                }
            }
            return game
        }
    }

    public func stats(_ gameID: String) async throws -> Croupier_Gametables_V1_GameStats {
        let players = try await database.read { db in
            try db.query(
                """
                SELECT user_id, initial_planets, initial_population, initial_ships_built, max_planets, max_population, max_ships_built
                FROM player_stats WHERE game_id = ? ORDER BY user_id
                """, [gameID]
            ) { r in
                Croupier_Gametables_V1_PlayerStats.with {
                    $0.userId = r.string(0)
                    $0.initialPlanets = r.int64(1)
                    $0.initialPopulation = r.int64(2)
                    $0.initialShipsBuilt = r.int64(3)
                    $0.maxPlanets = r.int64(4)
                    $0.maxPopulation = r.int64(5)
                    $0.maxShipsBuilt = r.int64(6)
                }
            }
        }
        return .with {
            $0.gameId = gameID
            $0.players = players
        }
    }

    /// Adds to the consumer's skipped count, in the transaction that saves its offset.
    static func countSkipped(_ tx: Transaction, _ n: Int) throws {
        try tx.execute(
            """
            INSERT INTO consumer_counters (consumer, skipped) VALUES (?, ?)
            ON CONFLICT (consumer) DO UPDATE SET skipped = consumer_counters.skipped + excluded.skipped
            """, [consumerName, n])
    }

    public struct ConsumerStatus: Sendable {
        public var offset: Int64
        public var last: Int64
        public var lag: Int64
        /// Undecodable events skipped since the stream began.
        public var skipped: Int64
        public var evaluations: Int64
    }

    /// The consumer's offset, the newest entry id, how many events lie
    /// between, how many were skipped, and how many evaluations ran.
    public func consumerStatus() async throws -> ConsumerStatus {
        let offset = try await offsets.load(Self.consumerName) ?? 0
        return try await database.read { db in
            func count(_ sql: String, _ args: [any SQLBindable]) throws -> Int64 { try db.queryFirst(sql, args) { $0.int64(0) } ?? 0 }
            return ConsumerStatus(
                offset: offset,
                last: try count("SELECT coalesce(max(offset), 0) FROM events WHERE stream = ?", [Self.stream]),
                lag: try count("SELECT count(*) FROM events WHERE stream = ? AND offset > ?", [Self.stream, offset]),
                skipped: try count("SELECT coalesce(max(skipped), 0) FROM consumer_counters WHERE consumer = ?", [Self.consumerName]),
                evaluations: try count("SELECT count(*) FROM evaluations", []))
        }
    }
}
