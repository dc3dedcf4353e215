import Foundation
import GameTablesService
import Storage
import Wire
import XCTest

/// Real `croupier serve games` / `serve rgs` processes SIGKILLed mid-run.
final class GameTablesCrashTests: XCTestCase {
    static let secret = "gametables-crash-secret"

    struct Cluster {
        let dir: String
        var games: Process
        var gamesPort: UInt16
        var rgs: Process?
        var rgsPort: UInt16 = 0

        var env: [String: String] {
            ["CROUPIER_DATA_DIR": dir, "CROUPIER_INTERNAL_SECRET": GameTablesCrashTests.secret, "CROUPIER_GAMES_PORT": String(gamesPort)]
        }
    }

    func channel(_ port: UInt16) -> WireChannel {
        WireChannel(host: "127.0.0.1", port: port, secret: Array(Self.secret.utf8), peerName: "crash-test")
    }

    /// Games pauses 10 ms between batches, so operations are mid-flight when it dies; `eventBatch` 1
    /// makes the runtime consumer commit each event alone, so it is still behind when it dies.
    func startGames(_ dir: String, port: UInt16 = 0, eventBatch: Int = 512) throws -> (Process, UInt16) {
        let config = dir + "/config.json"
        try #"{"games": {"batchPauseSeconds": 0.01, "runtimeBatchSize": \#(eventBatch)}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        return try startComponent("games", environment: [
            "CROUPIER_DATA_DIR": dir, "CROUPIER_INTERNAL_SECRET": Self.secret, "CROUPIER_GAMES_PORT": String(port),
        ], arguments: ["--config", config])
    }

    func startRGS(_ c: Cluster) throws -> (Process, UInt16) {
        try startComponent("rgs", environment: c.env.merging(["CROUPIER_RGS_PORT": "0"]) { $1 })
    }

    func testKillingGamesAndRGSMidRunLosesAndDoublesNothing() async throws {
        let dir = try makeTemporaryDirectory("gametables-crash").path
        let (gamesProcess, gamesPort) = try startGames(dir)
        var c = Cluster(dir: dir, games: gamesProcess, gamesPort: gamesPort)
        (c.rgs, c.rgsPort) = try startRGS(c)
        defer { for p in [c.games, c.rgs].compactMap({ $0 }) where p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        // 2 environments × 8 servers × 600 tables: 2 of 3 in a foreign currency, half of those with traffic.
        var estate: [Croupier_Gametables_V1_EstateRecord] = []
        var expected: Set<Int64> = []
        var gameTables: [Int64] = []
        var bo: Int64 = 0
        for e in 0..<2 {
            estate.append(.with { $0.environment = .with { $0.environmentId = "env-\(e)"; $0.requiredCurrencies = ["EUR"] } })
            for s in 0..<8 {
                let server = "srv-\(e)-\(s)"
                estate.append(.with { $0.server = .with { $0.serverId = server; $0.environmentId = "env-\(e)"; $0.active = true } })
                for t in 0..<600 {
                    bo += 1
                    let id = bo
                    let foreign = t % 3 != 0
                    estate.append(.with { $0.table = .with { $0.tableId = "t\(id)"; $0.serverId = server; $0.boId = id; $0.currency = foreign ? "USD" : "EUR"; $0.active = true } })
                    if foreign && t % 2 == 0 {
                        estate.append(.with { $0.traffic = .with { $0.tableId = "t\(id)"; $0.period = "2026-10"; $0.rounds = 10; $0.ggr = 2 } })
                    }
                    if foreign { expected.insert(id) }
                    gameTables.append(id)
                }
            }
        }
        let gamesClient = Croupier_Gametables_V1_GamesCleanup.Client(channel: channel(c.gamesPort))
        let tableIDs = gameTables
        _ = try await gamesClient.loadGameTables { w in
            for id in tableIDs { try await w.write(.with { $0.id = id; $0.name = "t\(id)"; $0.currency = "X"; $0.active = true }) }
        }
        let records = estate
        var rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: channel(c.rgsPort))
        _ = try await rgsClient.loadEstate { w in for r in records { try await w.write(r) } }
        let run = try await rgsClient.kickoffCleanup(.with { $0.runId = "crash-run" })

        func progress() async throws -> (pending: Int, acknowledged: Int64, slices: Int64) {
            let r = try await rgsClient.getCleanupRun(.with { $0.runId = "crash-run" })
            let jobs = r.environments.flatMap(\.servers)
            return (jobs.filter { $0.state == .pending }.count, jobs.reduce(0) { $0 + $1.slicesAcknowledged }, jobs.reduce(0) { $0 + $1.slices })
        }
        // (a) RGS dies while jobs are still pending.
        var killedRGSMidRun = false
        for _ in 0..<2_000 {
            let p = try await progress()
            if p.pending < 16 && p.pending > 0 { killedRGSMidRun = true; break }
            if p.pending == 0 { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        crash(c.rgs!)
        (c.rgs, c.rgsPort) = try startRGS(c)
        rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: channel(c.rgsPort))
        // (b) Games dies while slices are being delivered and operations run.
        var killedGamesMidRun = false
        for _ in 0..<4_000 {
            let p = try await progress()
            if p.acknowledged > 0 && (p.pending > 0 || p.acknowledged < p.slices) { killedGamesMidRun = true; break }
            if p.pending == 0 && p.acknowledged == p.slices { break }
            try await Task.sleep(for: .milliseconds(1))
        }
        crash(c.games)
        try await Task.sleep(for: .milliseconds(300))  // RGS meets a dead peer and retries
        (c.games, _) = try startGames(dir, port: c.gamesPort)

        // Everything finishes after the restarts.
        var finished = false
        for _ in 0..<3_000 {
            let p = try await progress()
            if p.pending == 0 && p.acknowledged == p.slices { finished = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertTrue(finished, "the run completes after both restarts")
        let games = try Database(path: dir + "/games.sqlite", owner: "games", migrations: GamesRole.migrations)
        var settled = false
        for _ in 0..<3_000 {
            let open = try await games.read { db in
                try db.queryFirst("SELECT count(*) FROM operations WHERE status IN ('RECEIVED', 'IN_PROGRESS')") { $0.int(0) } ?? 0
            }
            if open == 0 { settled = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertTrue(settled, "every Games operation finishes")

        // Exactly once, with the run's archived_at on both sides.
        let (archivedRows, versionCounts, failed) = try await games.read { db in
            (try db.query("SELECT id, archived_at FROM game_tables WHERE active = 0") { ($0.int64(0), $0.int64(1)) },
             try db.query("SELECT table_id, count(*) FROM versions WHERE event = 'archive' GROUP BY table_id") { ($0.int64(0), $0.int(1)) },
             try db.queryFirst("SELECT count(*) FROM operations WHERE status = 'FAILED'") { $0.int(0) } ?? 0)
        }
        XCTAssertEqual(Set(archivedRows.map { $0.0 }), expected, "every table that should be archived is, and no other")
        XCTAssertTrue(archivedRows.allSatisfy { $0.1 == run.archivedAtMs })
        XCTAssertEqual(versionCounts.count, expected.count)
        XCTAssertTrue(versionCounts.allSatisfy { $0.1 == 1 }, "one archive version per table")
        XCTAssertEqual(failed, 0)
        let rgs = try Database(path: dir + "/rgs.sqlite", owner: "rgs", migrations: RgsRole.migrations)
        let (rgsArchived, rgsForeignActive) = try await rgs.read { db in
            (try db.query("SELECT bo_id, archived_at FROM rgs_tables WHERE active = 0") { ($0.int64(0), $0.int64(1)) },
             try db.queryFirst("SELECT count(*) FROM rgs_tables WHERE active = 1 AND currency != 'EUR'") { $0.int(0) } ?? 0)
        }
        XCTAssertEqual(rgsForeignActive, 0)
        XCTAssertTrue(rgsArchived.allSatisfy { $0.1 == run.archivedAtMs })
        XCTAssertEqual(rgsArchived.count, expected.count / 2, "trafficked tables archived locally; the rest deleted")
        print("gametables crash test: RGS killed mid-run: \(killedRGSMidRun), Games killed mid-delivery: \(killedGamesMidRun); \(expected.count) tables archived once on Games")
        games.close()
        rgs.close()
        for p in [c.games, c.rgs!] { kill(p.processIdentifier, SIGTERM); p.waitUntilExit() }
    }

    func testKillingTheConsumerMidStreamEqualsACleanPass() async throws {
        func events(game g: Int) -> [Croupier_Gametables_V1_RuntimeEvent] {
            var out: [Croupier_Gametables_V1_RuntimeEvent] = []
            for turn in 1...150 {
                let stats = (0..<4).map { p in
                    #"{"user_id":"u\#(p)","planets":\#((turn * (p + 1) + g) % 37),"population":\#((turn * 7 + p * g) % 101),"ships_built":\#(turn / (p + 1))}"#
                }.joined(separator: ",")
                out.append(.with {
                    $0.kind = "runtime_snapshot_update"
                    $0.fields = ["game_id": "g\(g)", "current_turn": String(turn), "runtime_status": "t\(turn)", "player_turn_stats": "[\(stats)]"]
                })
            }
            if g % 2 == 0 {
                out.append(.with {
                    $0.kind = "game_finished"
                    $0.fields = ["game_id": "g\(g)", "current_turn": "151", "finished_at_ms": String(1_795_400_000_000 + Int64(g))]
                })
            }
            return out
        }
        let games = 40
        func feed(_ client: Croupier_Gametables_V1_GameRuntime.Client) async throws {
            for g in 0..<games { _ = try await client.registerGame(.with { $0.gameId = "g\(g)" }) }
            // Interleaved across games, in chunks, as a game master would publish them.
            let all = (0..<games).map(events(game:))
            for turnChunk in stride(from: 0, to: 151, by: 10) {
                var batch: [Croupier_Gametables_V1_RuntimeEvent] = []
                for g in 0..<games { batch += all[g][turnChunk..<min(turnChunk + 10, all[g].count)] }
                _ = try await client.publishRuntimeEvents(.with { $0.events = batch })
            }
        }
        func state(_ client: Croupier_Gametables_V1_GameRuntime.Client) async throws -> [String] {
            var out: [String] = []
            for g in 0..<games {
                var game = try await client.getGame(.with { $0.gameId = "g\(g)" })
                game.snapshot?.updatedAtMs = 0  // publish time differs between the two processes
                let stats = try await client.getGameStats(.with { $0.gameId = "g\(g)" })
                out.append("\(game.serializedBytes())|\(stats.serializedBytes())")
            }
            return out
        }
        func caughtUp(_ client: Croupier_Gametables_V1_GameRuntime.Client, total: Int64) async throws -> Bool {
            for _ in 0..<3_000 {
                let s = try await client.getConsumerStatus(.init())
                if s.lag == 0 && s.lastEntryId >= total { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        let total = Int64(games * 150 + games / 2)

        // The clean single pass.
        let cleanDir = try makeTemporaryDirectory("runtime-clean").path
        let (clean, cleanPort) = try startGames(cleanDir)
        defer { if clean.isRunning { kill(clean.processIdentifier, SIGKILL) } }
        let cleanClient = Croupier_Gametables_V1_GameRuntime.Client(channel: channel(cleanPort))
        try await feed(cleanClient)
        let cleanCaughtUp = try await caughtUp(cleanClient, total: total)
        XCTAssertTrue(cleanCaughtUp)
        let expected = try await state(cleanClient)

        // The same stream, with the process killed while the consumer is behind.
        let dir = try makeTemporaryDirectory("runtime-crash").path
        var (proc, port) = try startGames(dir, eventBatch: 1)
        defer { if proc.isRunning { kill(proc.processIdentifier, SIGKILL) } }
        var client = Croupier_Gametables_V1_GameRuntime.Client(channel: channel(port))
        try await feed(client)
        var before = try await client.getConsumerStatus(.init())
        while before.offset < 500 { before = try await client.getConsumerStatus(.init()) }
        crash(proc)
        (proc, port) = try startGames(dir, port: port, eventBatch: 1)
        client = Croupier_Gametables_V1_GameRuntime.Client(channel: channel(port))
        let restartedCaughtUp = try await caughtUp(client, total: total)
        XCTAssertTrue(restartedCaughtUp)
        let after = try await state(client)
        XCTAssertEqual(after, expected, "snapshot, stats and evaluations equal a clean single pass")
        XCTAssertGreaterThan(before.lag, 1_000, "killed well before the end of the stream")
        print("runtime crash test: killed at offset \(before.offset) of \(before.lastEntryId) (lag \(before.lag))")
        for p in [clean, proc] { kill(p.processIdentifier, SIGTERM); p.waitUntilExit() }
    }
}
