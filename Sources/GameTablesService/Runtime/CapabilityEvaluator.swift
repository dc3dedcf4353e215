import Storage

/// What runs once per finished game, inside the transaction that handles
/// its `game_finished` event. Throwing rolls that event back and holds the
/// consumer's offset, so the same event is retried.
public protocol CapabilityEvaluator: Sendable {
    func evaluate(_ tx: Transaction, gameID: String, finishedAtMillis: Int64) throws
}

/// Records each player's final standing: ranked by planets, then
/// population, then ships built (each player's latest observation, which
/// for players in the `game_finished` event is its final stats), ties by user id.
public struct StandingsEvaluator: CapabilityEvaluator {
    public init() {}

    public func evaluate(_ tx: Transaction, gameID: String, finishedAtMillis: Int64) throws {
        let players = try tx.query(
            """
            SELECT user_id, last_planets, last_population, last_ships_built FROM player_stats WHERE game_id = ?
            ORDER BY last_planets DESC, last_population DESC, last_ships_built DESC, user_id
            """, [gameID]) { ($0.string(0), $0.int64(1), $0.int64(2), $0.int64(3)) }
        for (rank, p) in players.enumerated() {
            try tx.execute(
                """
                INSERT INTO standings (game_id, user_id, rank, planets, population, ships_built) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (game_id, user_id) DO UPDATE SET rank = excluded.rank, planets = excluded.planets,
                    population = excluded.population, ships_built = excluded.ships_built
                """,
                [gameID, p.0, rank + 1, p.1, p.2, p.3])
        }
    }
}
