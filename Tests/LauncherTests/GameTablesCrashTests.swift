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

    /// 2 environments × 8 servers × 600 tables: 2 of 3 in a foreign currency, half of those with
    /// traffic; every 25th foreign table has a twin sharing its back-office id (the twin has traffic
    /// every other time); one table of srv-1-3 is in play on Games, so that server's DELETE slice fails.
    struct Estate {
        var records: [Croupier_Gametables_V1_EstateRecord] = []
        var gameTables: [Int64] = []
        var inPlay: Int64 = 0
        /// Back-office id → (any sharing table has traffic, its server).
        var foreign: [Int64: (kept: Bool, server: String)] = [:]

        init() {
            var bo: Int64 = 0
            for e in 0..<2 {
                records.append(.with { $0.environment = .with { $0.environmentId = "env-\(e)"; $0.requiredCurrencies = ["EUR"] } })
                for s in 0..<8 {
                    let server = "srv-\(e)-\(s)"
                    records.append(.with { $0.server = .with { $0.serverId = server; $0.environmentId = "env-\(e)"; $0.active = true } })
                    for t in 0..<600 {
                        bo += 1
                        let id = bo
                        let isForeign = t % 3 != 0
                        let busy = isForeign && t % 2 == 0
                        add("t\(id)", server, id, isForeign ? "USD" : "EUR", busy)
                        if isForeign && t % 25 == 1 { add("twin\(id)", server, id, "USD", t % 50 == 1) }
                        if server == "srv-1-3" && t == 5 { inPlay = id }  // foreign, no traffic, no twin: in the DELETE slice
                        gameTables.append(id)
                    }
                }
            }
        }

        mutating func add(_ table: String, _ server: String, _ bo: Int64, _ currency: String, _ traffic: Bool) {
            records.append(.with { $0.table = .with { $0.tableId = table; $0.serverId = server; $0.boId = bo; $0.currency = currency; $0.active = true } })
            if traffic { records.append(.with { $0.traffic = .with { $0.tableId = table; $0.period = "2026-10"; $0.rounds = 10; $0.ggr = 2 } }) }
            if currency != "EUR" { foreign[bo] = ((foreign[bo]?.kept ?? false) || traffic, server) }
        }

        /// Ids of srv-1-3's DELETE slice: its in-play table fails it, so none of them changes anywhere.
        var failedIDs: Set<Int64> { Set(foreign.filter { $0.value.server == "srv-1-3" && !$0.value.kept }.keys) }
    }

    func testKillingGamesAndRGSMidRunLosesAndDoublesNothing() async throws {
        let dir = try makeTemporaryDirectory("gametables-crash").path
        let (gamesProcess, gamesPort) = try startGames(dir)
        var c = Cluster(dir: dir, games: gamesProcess, gamesPort: gamesPort)
        (c.rgs, c.rgsPort) = try startRGS(c)
        defer { for p in [c.games, c.rgs].compactMap({ $0 }) where p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        let estate = Estate()
        let gamesClient = Croupier_Gametables_V1_GamesCleanup.Client(channel: channel(c.gamesPort))
        let (tableIDs, inPlay) = (estate.gameTables, estate.inPlay)
        _ = try await gamesClient.loadGameTables { w in
            for id in tableIDs { try await w.write(.with { $0.id = id; $0.name = "t\(id)"; $0.currency = "X"; $0.active = true; $0.inPlay = id == inPlay }) }
        }
        let records = estate.records
        var rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: channel(c.rgsPort))
        _ = try await rgsClient.loadEstate { w in for r in records { try await w.write(r) } }
        let run = try await rgsClient.kickoffCleanup(.with { $0.runId = "crash-run" })

        struct Progress { var pending = 0, accepted = 0, applied = 0, slices = 0, open = 0 }
        func progress() async throws -> Progress {
            let r = try await rgsClient.getCleanupRun(.with { $0.runId = "crash-run" })
            let jobs = r.environments.flatMap(\.servers)
            let slices = jobs.flatMap(\.slicesDetail)
            return Progress(
                pending: jobs.filter { $0.state == .pending }.count, accepted: slices.filter { !$0.operationId.isEmpty }.count,
                applied: slices.filter(\.appliedLocally).count, slices: slices.count,
                open: jobs.filter { $0.state == .pending || $0.state == .sending }.count)
        }
        func waitFor(_ condition: (Progress) -> Bool) async throws -> Bool {
            for _ in 0..<4_000 {
                let p = try await progress()
                if condition(p) { return true }
                if p.open == 0 { return false }
                try await Task.sleep(for: .milliseconds(1))
            }
            return false
        }
        // (a) RGS dies while jobs are still pending.
        let killedRGSPlanning = try await waitFor { $0.pending < 16 && $0.pending > 0 }
        crash(c.rgs!)
        (c.rgs, c.rgsPort) = try startRGS(c)
        rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: channel(c.rgsPort))
        // (b) Games dies while operations it accepted are running and RGS waits for their outcome.
        let killedGamesMidOperations = try await waitFor { $0.accepted > 0 && $0.applied < $0.accepted }
        crash(c.games)
        try await Task.sleep(for: .milliseconds(300))  // RGS meets a dead peer and retries
        (c.games, _) = try startGames(dir, port: c.gamesPort)
        // (c) RGS dies while it applies outcomes: some slices settled on its side, some not.
        let killedRGSSettling = try await waitFor { $0.applied > 0 && $0.applied < $0.slices }
        crash(c.rgs!)
        (c.rgs, c.rgsPort) = try startRGS(c)
        rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: channel(c.rgsPort))

        // Everything finishes after the restarts.
        var finished = false
        for _ in 0..<3_000 {
            if try await progress().open == 0 { finished = true; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertTrue(finished, "the run completes after the restarts")
        let final = try await rgsClient.getCleanupRun(.with { $0.runId = "crash-run" })
        let failedJobs = final.environments.flatMap(\.servers).filter { $0.state != .done }
        XCTAssertEqual(failedJobs.map(\.serverId), ["srv-1-3"], "only the server whose slice Games failed is not DONE")
        XCTAssertTrue(failedJobs.first?.failure.contains("in play") ?? false, failedJobs.first?.failure ?? "")

        // Games: every table that should be archived is, once, with the run's archived_at; nothing else changed.
        let games = try Database(path: dir + "/games.sqlite", owner: "games", migrations: GamesRole.migrations)
        let expected = Set(estate.foreign.keys).subtracting(estate.failedIDs)
        let (gameRows, versions, failedOps) = try await games.read { db in
            (try db.query("SELECT id, active, archived_at FROM game_tables") { ($0.int64(0), ($0.bool(1), $0.optionalInt64(2))) },
             try db.query("SELECT table_id, event FROM versions") { ($0.int64(0), $0.string(1)) },
             try db.queryFirst("SELECT count(*) FROM operations WHERE status = 'FAILED'") { $0.int(0) } ?? 0)
        }
        let gameState = Dictionary(uniqueKeysWithValues: gameRows)
        let archived = Set(gameRows.filter { !$0.1.0 }.map(\.0))
        XCTAssertTrue(archived == expected, "archived exactly the tables Games applied: \(archived.count) vs \(expected.count), "
            + "unexpected \(archived.subtracting(expected).sorted().prefix(5)), missing \(expected.subtracting(archived).sorted().prefix(5))")
        XCTAssertTrue(gameRows.filter { !$0.1.0 }.allSatisfy { $0.1.1 == run.archivedAtMs })
        XCTAssertEqual(versions.filter { $0.1 != "archive" }.count, 0, "no revert rows: a failure changed nothing")
        XCTAssertTrue(Set(versions.map(\.0)) == expected, "version rows for exactly the archived tables")
        XCTAssertEqual(versions.count, expected.count, "one version row per visible change")
        XCTAssertEqual(failedOps, 1)

        // RGS: every remaining table has its Games table's state; deleted ones are exactly the ids without traffic.
        let rgs = try Database(path: dir + "/rgs.sqlite", owner: "rgs", migrations: RgsRole.migrations)
        let rgsRows = try await rgs.read { db in
            try db.query("SELECT table_id, bo_id, active, archived_at, currency FROM rgs_tables") {
                ($0.string(0), $0.int64(1), $0.bool(2), $0.optionalInt64(3), $0.string(4))
            }
        }
        for (table, bo, active, archivedAt, _) in rgsRows {
            XCTAssertEqual(active, gameState[bo]?.0, "\(table) (bo \(bo)) disagrees with Games")
            XCTAssertEqual(archivedAt, gameState[bo]?.1, "\(table) (bo \(bo)) disagrees with Games")
        }
        let remainingForeign = Set(rgsRows.filter { $0.4 != "EUR" }.map(\.1))
        let deletedIDs = Set(estate.foreign.filter { !$0.value.kept }.keys).subtracting(estate.failedIDs)
        let remainingExpected = Set(estate.foreign.keys).subtracting(deletedIDs)
        XCTAssertTrue(remainingForeign == remainingExpected, "RGS deleted exactly the ids without traffic that Games archived: "
            + "unexpected \(remainingForeign.subtracting(remainingExpected).sorted().prefix(5)), missing \(remainingExpected.subtracting(remainingForeign).sorted().prefix(5))")
        print("gametables crash test: RGS killed planning: \(killedRGSPlanning), Games killed mid-operations: \(killedGamesMidOperations), RGS killed settling: \(killedRGSSettling); \(expected.count) tables archived once on Games, both sides identical")
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
