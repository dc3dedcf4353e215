import Foundation
import GameTablesService
import Storage
import Synchronization
import Wire
import TestSupport
import XCTest

/// Seed 002's consumer rules, driven batch by batch (`drainOnce`).
final class RuntimeConsumerTests: XCTestCase {
    static func event(_ kind: String, _ fields: [String: String]) -> Croupier_Gametables_V1_RuntimeEvent {
        .with {
            $0.kind = kind
            $0.fields = fields
        }
    }

    static func stats(_ players: [(String, Int, Int, Int)]) -> String {
        "[" + players.map { #"{"user_id":"\#($0.0)","planets":\#($0.1),"population":\#($0.2),"ships_built":\#($0.3)}"# }
            .joined(separator: ",") + "]"
    }

    static func snapshot(_ game: String, turn: Int, _ players: [(String, Int, Int, Int)]) -> Croupier_Gametables_V1_RuntimeEvent {
        event("runtime_snapshot_update", [
            "game_id": game, "current_turn": String(turn), "runtime_status": "turn_\(turn)",
            "engine_health_summary": "ok", "player_turn_stats": stats(players),
        ])
    }

    static func finished(_ game: String, turn: Int, at: Int64, _ players: [(String, Int, Int, Int)]) -> Croupier_Gametables_V1_RuntimeEvent {
        event("game_finished", [
            "game_id": game, "current_turn": String(turn), "runtime_status": "finished",
            "player_turn_stats": stats(players), "finished_at_ms": String(at),
        ])
    }

    func publish(_ h: GameTablesHarness, _ events: [Croupier_Gametables_V1_RuntimeEvent]) async throws -> [Int64] {
        try await h.runtime.publishRuntimeEvents(.with { $0.events = events }).entryIds
    }

    func testSnapshotsStatsFinishAndOneEvaluation() async throws {
        let h = try await GameTablesHarness()
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g1" })
        _ = try await publish(h, [
            Self.snapshot("g1", turn: 1, [("alice", 3, 100, 0), ("bob", 2, 90, 1)]),
            Self.snapshot("g1", turn: 2, [("alice", 5, 80, 2), ("bob", 4, 150, 3)]),
            Self.snapshot("g1", turn: 3, [("alice", 4, 120, 2), ("bob", 6, 140, 3), ("carol", 1, 10, 0)]),
            Self.finished("g1", turn: 4, at: 1_795_400_000_000, [("alice", 6, 130, 5), ("bob", 6, 130, 4)]),
        ])
        let r = try await h.games.consumer.drainOnce()
        XCTAssertEqual(r.handled, 4)
        let game = try await h.runtime.getGame(.with { $0.gameId = "g1" })
        XCTAssertEqual(game.status, .finished)
        XCTAssertEqual(game.finishedAtMs, 1_795_400_000_000)
        XCTAssertEqual(game.snapshot?.currentTurn, 4)
        XCTAssertEqual(game.snapshot?.runtimeStatus, "finished")
        XCTAssertTrue(game.evaluated)
        // Final stats ranked by planets, then population, then ships built (alice and bob tie until ships).
        XCTAssertEqual(game.standings.map(\.userId), ["alice", "bob", "carol"])
        XCTAssertEqual(game.standings.map(\.rank), [1, 2, 3])
        let stats = try await h.runtime.getGameStats(.with { $0.gameId = "g1" }).players
        let alice = try XCTUnwrap(stats.first { $0.userId == "alice" })
        XCTAssertEqual([alice.initialPlanets, alice.initialPopulation, alice.initialShipsBuilt], [3, 100, 0], "frozen at first sight")
        XCTAssertEqual([alice.maxPlanets, alice.maxPopulation, alice.maxShipsBuilt], [6, 130, 5])
        let carol = try XCTUnwrap(stats.first { $0.userId == "carol" })
        XCTAssertEqual(carol.initialPlanets, 1, "a player first seen later freezes then")
        let status = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(status.lag, 0)
        XCTAssertEqual(status.offset, status.lastEntryId)
        await h.stop()
    }

    func testAReplayedFinishChangesNothingAndEvaluatesOnce() async throws {
        let counter = CountingEvaluator()
        let h = try await GameTablesHarness(evaluator: counter)
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g2"; $0.status = .paused })
        let fin = Self.finished("g2", turn: 9, at: 1_795_400_000_000, [("u", 1, 1, 1)])
        _ = try await publish(h, [fin, fin, Self.finished("g2", turn: 9, at: 1_795_500_000_000, [("u", 1, 1, 1)])])
        _ = try await h.games.consumer.drainOnce()
        let game = try await h.runtime.getGame(.with { $0.gameId = "g2" })
        XCTAssertEqual(game.status, .finished)
        XCTAssertEqual(game.finishedAtMs, 1_795_400_000_000, "the first finish wins (compare-and-set)")
        XCTAssertEqual(counter.calls, 1)
        XCTAssertTrue(h.log.all.contains { $0.contains("game_finished_replay") })
        await h.stop()
    }

    /// Go's encoding/json writes a nil slice as `null`: no stats, and the event's turn still applies.
    func testGoNullStatsAreNoStats() async throws {
        let h = try await GameTablesHarness()
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g-null" })
        _ = try await publish(h, [
            Self.snapshot("g-null", turn: 1, [("a", 1, 10, 0)]),
            Self.event("runtime_snapshot_update", ["game_id": "g-null", "current_turn": "2", "player_turn_stats": "null"]),
            Self.event("runtime_snapshot_update", ["game_id": "g-null", "current_turn": "3", "player_turn_stats": " null\n"]),
        ])
        _ = try await h.games.consumer.drainOnce()
        let game = try await h.runtime.getGame(.with { $0.gameId = "g-null" })
        XCTAssertEqual(game.snapshot?.currentTurn, 3, "no turn is lost")
        let status = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(status.skipped, 0)
        let stats = try await h.runtime.getGameStats(.with { $0.gameId = "g-null" }).players
        XCTAssertEqual(stats.map(\.maxPlanets), [1], "null stats change no one's stats")
        await h.stop()
    }

    /// The skipped count covers the whole stream: it is saved with the offset and survives a restart.
    func testTheSkippedCountAndEvaluationsSurviveARestart() async throws {
        let h = try await GameTablesHarness()
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g-r" })
        _ = try await publish(h, [
            Self.event("player_joined", ["game_id": "g-r"]),
            Self.event("runtime_snapshot_update", ["game_id": "g-r", "current_turn": "x"]),
            Self.finished("g-r", turn: 9, at: GameTablesHarness.start, [("a", 3, 1, 1)]),
        ])
        _ = try await h.games.consumer.drainOnce()
        let before = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(before.skipped, 2)
        XCTAssertEqual(before.evaluations, 1)
        let path = h.games.database.path
        await h.stop()
        let reopened = try GamesRole(path: path, settings: GameTablesHarness.fastSettings, log: { _ in })
        let after = try await reopened.runtime.consumerStatus()
        XCTAssertEqual(after.skipped, 2, "the count survives the restart")
        XCTAssertEqual(after.evaluations, 1)
        XCTAssertEqual(after.lag, 0)
        reopened.stop()
    }

    func testUndecodableEventsAreLoggedAndSkipped() async throws {
        let h = try await GameTablesHarness()
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g3" })
        let bad: [(String, Croupier_Gametables_V1_RuntimeEvent)] = [
            ("unsupported event kind", Self.event("player_joined", ["game_id": "g3"])),
            ("missing game_id", Self.event("runtime_snapshot_update", ["current_turn": "1"])),
            ("invalid game_id", Self.event("runtime_snapshot_update", ["game_id": "has space"])),
            ("must not be negative", Self.event("runtime_snapshot_update", ["game_id": "g3", "current_turn": "-1"])),
            ("invalid current_turn", Self.event("runtime_snapshot_update", ["game_id": "g3", "current_turn": "x"])),
            ("player_turn_stats", Self.event("runtime_snapshot_update", ["game_id": "g3", "player_turn_stats": "{oops"])),
            ("player_turn_stats", Self.event("runtime_snapshot_update", ["game_id": "g3", "player_turn_stats": #"[{"planets":1}]"#])),
            ("player_turn_stats", Self.event("runtime_snapshot_update", ["game_id": "g3", "player_turn_stats": #"[{"user_id":"a","planets":-1}]"#])),
            ("finished_at_ms", Self.event("game_finished", ["game_id": "g3", "finished_at_ms": "0"])),
        ]
        _ = try await publish(h, bad.map(\.1) + [Self.snapshot("g3", turn: 7, [])])
        let r = try await h.games.consumer.drainOnce()
        XCTAssertEqual(r.handled, bad.count + 1, "skipped events advance the offset")
        let skipLines = h.log.all.filter { $0.contains("runtime_event_skipped") }
        XCTAssertEqual(skipLines.count, bad.count)
        for (reason, _) in bad { XCTAssertTrue(skipLines.contains { $0.contains(reason) }, reason) }
        let game = try await h.runtime.getGame(.with { $0.gameId = "g3" })
        XCTAssertEqual(game.status, .running)
        XCTAssertEqual(game.snapshot?.currentTurn, 7)
        let status = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(status.skipped, Int64(bad.count))
        XCTAssertEqual(status.lag, 0)
        await h.stop()
    }

    func testATransientEvaluationFailureHoldsTheOffsetUntilItSucceeds() async throws {
        let flaky = FlakyEvaluator(failures: 2)
        let h = try await GameTablesHarness(evaluator: flaky)
        _ = try await h.runtime.registerGame(.with { $0.gameId = "g4" })
        let ids = try await publish(h, [
            Self.snapshot("g4", turn: 1, [("a", 1, 1, 1)]),
            Self.finished("g4", turn: 2, at: 1_795_400_000_000, [("a", 2, 2, 2)]),
            Self.snapshot("g4", turn: 3, []),
        ])
        var r = try await h.games.consumer.drainOnce()
        XCTAssertEqual(r.handled, 1)
        XCTAssertTrue(r.blocked)
        var status = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(status.offset, ids[0], "the offset waits before the failed event")
        var game = try await h.runtime.getGame(.with { $0.gameId = "g4" })
        XCTAssertEqual(game.status, .running, "the failed event's changes rolled back with it")
        r = try await h.games.consumer.drainOnce()
        XCTAssertTrue(r.blocked)
        r = try await h.games.consumer.drainOnce()
        XCTAssertEqual(r.handled, 2)
        XCTAssertFalse(r.blocked)
        status = try await h.runtime.getConsumerStatus(.init())
        XCTAssertEqual(status.offset, ids[2])
        game = try await h.runtime.getGame(.with { $0.gameId = "g4" })
        XCTAssertEqual(game.status, .finished)
        XCTAssertTrue(game.evaluated)
        XCTAssertEqual(flaky.succeeded, 1)
        await h.stop()
    }

    func testReplayingTheWholeStreamChangesNothing() async throws {
        let h = try await GameTablesHarness()
        for g in ["a", "b"] { _ = try await h.runtime.registerGame(.with { $0.gameId = g }) }
        var events: [Croupier_Gametables_V1_RuntimeEvent] = []
        for turn in 1...30 {
            for g in ["a", "b"] {
                events.append(Self.snapshot(g, turn: turn, [("p1", turn % 7, turn * 3 % 11, turn), ("p2", 5, turn, 30 - turn)]))
            }
        }
        events.append(Self.finished("a", turn: 31, at: 1_795_400_000_000, [("p1", 9, 9, 9)]))
        _ = try await publish(h, events)
        while try await h.games.consumer.drainOnce().handled > 0 {}
        let first = try await snapshotOf(h)
        // Rewind the offset: every event is applied a second time.
        try await OffsetStore(database: h.games.database).save("runtime_consumer", offset: 0)
        while try await h.games.consumer.drainOnce().handled > 0 {}
        let second = try await snapshotOf(h)
        XCTAssertEqual(first, second)
        await h.stop()
    }

    /// Everything the consumer derives, for comparing runs.
    func snapshotOf(_ h: GameTablesHarness) async throws -> [String] {
        var out: [String] = []
        for g in ["a", "b"] {
            let game = try await h.runtime.getGame(.with { $0.gameId = g })
            let stats = try await h.runtime.getGameStats(.with { $0.gameId = g })
            out.append("\(game.serializedBytes())|\(stats.serializedBytes())")
        }
        return out
    }
}

final class CountingEvaluator: CapabilityEvaluator {
    private let count = Mutex(0)
    var calls: Int { count.withLock { $0 } }
    func evaluate(_ tx: Transaction, gameID: String, finishedAtMillis: Int64) throws { count.withLock { $0 += 1 } }
}

/// Fails its first `failures` evaluations, as a store outage would.
final class FlakyEvaluator: CapabilityEvaluator {
    struct Outage: Error {}
    private let state: Mutex<(failures: Int, succeeded: Int)>
    init(failures: Int) { state = Mutex((failures, 0)) }
    var succeeded: Int { state.withLock { $0.succeeded } }
    func evaluate(_ tx: Transaction, gameID: String, finishedAtMillis: Int64) throws {
        try state.withLock { s in
            if s.failures > 0 {
                s.failures -= 1
                throw Outage()
            }
            s.succeeded += 1
        }
        try StandingsEvaluator().evaluate(tx, gameID: gameID, finishedAtMillis: finishedAtMillis)
    }
}
