import Foundation

/// One player's stats as a runtime event reports them.
public struct PlayerObservedStats: Sendable, Equatable {
    public var userID: String
    public var planets: Int64
    public var population: Int64
    public var shipsBuilt: Int64
}

/// A runtime event the consumer can apply (seed 002's two kinds).
public struct DecodedRuntimeEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case snapshotUpdate = "runtime_snapshot_update", gameFinished = "game_finished" }

    public var kind: Kind
    public var gameID: String
    public var currentTurn: Int64
    public var runtimeStatus: String
    public var engineHealthSummary: String
    public var playerStats: [PlayerObservedStats]
    /// Only on `game_finished`, when the game master sent it.
    public var finishedAtMillis: Int64?
}

/// Turns a stored event (kind + string fields) into something to apply, or
/// says why it cannot be applied: unknown kind, missing or invalid game id,
/// a turn that is not a non-negative integer, player stats that are not the
/// expected JSON, a finished time that is not a positive integer.
public enum RuntimeEventDecoder {
    public struct Undecodable: Error, CustomStringConvertible { public let description: String }

    public static func decode(kind: String, fields: [String: String]) throws -> DecodedRuntimeEvent {
        guard let k = DecodedRuntimeEvent.Kind(rawValue: kind) else { throw Undecodable(description: "unsupported event kind '\(kind)'") }
        let gameID = (fields["game_id"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !gameID.isEmpty else { throw Undecodable(description: "missing game_id") }
        guard GameID.isValid(gameID) else { throw Undecodable(description: "invalid game_id '\(gameID)'") }
        var turn: Int64 = 0
        if let raw = fields["current_turn"], !raw.isEmpty {
            guard let parsed = Int64(raw) else { throw Undecodable(description: "invalid current_turn '\(raw)'") }
            guard parsed >= 0 else { throw Undecodable(description: "invalid current_turn: must not be negative") }
            turn = parsed
        }
        let stats = try decodeStats(fields["player_turn_stats"] ?? "")
        var finished: Int64?
        if let raw = fields["finished_at_ms"], !raw.isEmpty {
            guard let ms = Int64(raw) else { throw Undecodable(description: "invalid finished_at_ms '\(raw)'") }
            guard ms > 0 else { throw Undecodable(description: "invalid finished_at_ms: must be positive") }
            finished = ms
        }
        return DecodedRuntimeEvent(
            kind: k, gameID: gameID, currentTurn: turn, runtimeStatus: fields["runtime_status"] ?? "",
            engineHealthSummary: fields["engine_health_summary"] ?? "", playerStats: stats, finishedAtMillis: finished)
    }

    /// `[{"user_id": "u1", "planets": 3, "population": 120, "ships_built": 4}, …]`;
    /// empty or `null` (how Go's encoding/json writes a nil slice) is no stats.
    static func decodeStats(_ payload: String) throws -> [PlayerObservedStats] {
        let trimmed = payload.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty || trimmed == "null" { return [] }
        guard let array = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [Any] else {
            throw Undecodable(description: "invalid player_turn_stats: not a JSON array")
        }
        return try array.map { item in
            guard let o = item as? [String: Any] else { throw Undecodable(description: "invalid player_turn_stats: an element is not an object") }
            let user = ((o["user_id"] as? String) ?? "").trimmingCharacters(in: .whitespaces)
            guard !user.isEmpty else { throw Undecodable(description: "invalid player_turn_stats: missing user_id") }
            func count(_ key: String) throws -> Int64 {
                guard let n = o[key] else { return 0 }
                guard let number = n as? NSNumber, Double(number.int64Value) == number.doubleValue, number.int64Value >= 0
                else { throw Undecodable(description: "invalid player_turn_stats: \(key) of \(user) must be a non-negative integer") }
                return number.int64Value
            }
            return PlayerObservedStats(userID: user, planets: try count("planets"), population: try count("population"), shipsBuilt: try count("ships_built"))
        }
    }
}

/// Game ids: 1–128 characters, no whitespace or control characters.
enum GameID {
    static func isValid(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && !id.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }
    }
}
