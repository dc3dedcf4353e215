import Foundation
import GameTablesService
import Storage
import Wire

/// `croupier bench gametables`: a whole cleanup (RGS and Games as their own
/// processes, pause 0) over 100,000 tables on 20 servers, beside the same
/// archive done as bare SQLite batches in one process; and runtime events
/// consumed per second with a durable offset, batched and one event per commit.
enum GameTablesBenchmark {
    static let secret = "bench-gametables-secret"

    static func progress(_ line: String) { FileHandle.standardError.write(Data("bench gametables: \(line)\n".utf8)) }

    /// `croupier serve <component>` in `dir`, ready; returns the process and port.
    static func serve(_ component: String, dir: String, gamesPort: UInt16 = 0, config: String) throws -> (Process, UInt16) {
        try serveComponent(component, environment: [
            "CROUPIER_DATA_DIR": dir, "CROUPIER_INTERNAL_SECRET": secret, "CROUPIER_GAMES_PORT": String(gamesPort),
            "CROUPIER_RGS_PORT": "0",
        ], arguments: ["--config", config])
    }

    static func channel(_ port: UInt16) -> WireChannel {
        WireChannel(host: "127.0.0.1", port: port, secret: Array(secret.utf8), peerName: "bench")
    }

    static func freshDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-gt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try #"{"games": {"batchPauseSeconds": 0.0}}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        return dir
    }

    struct CleanupFigures {
        var seconds: Double
        var gamesCPU: Double
        var rgsCPU: Double
    }

    /// Seconds from kickoff until both sides agree (every job DONE) and every Games operation of the
    /// run is DEFERRED, with the CPU each process used meanwhile.
    static func cleanup(servers: Int, tablesPerServer: Int) async throws -> CleanupFigures {
        let dir = try freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (games, gamesPort) = try serve("games", dir: dir, config: dir + "/config.json")
        defer { games.terminate(); games.waitUntilExit() }
        let (rgs, rgsPort) = try serve("rgs", dir: dir, gamesPort: gamesPort, config: dir + "/config.json")
        defer { rgs.terminate(); rgs.waitUntilExit() }
        let gamesChannel = channel(gamesPort)
        let rgsChannel = channel(rgsPort)
        defer { gamesChannel.close(); rgsChannel.close() }
        let gamesClient = Croupier_Gametables_V1_GamesCleanup.Client(channel: gamesChannel)
        let rgsClient = Croupier_Gametables_V1_RgsCleanup.Client(channel: rgsChannel)

        progress("loading \(servers * tablesPerServer) tables (not timed)")
        let total = Int64(servers * tablesPerServer)
        _ = try await gamesClient.loadGameTables { w in
            for id in 1...total { try await w.write(.with { $0.id = id; $0.name = "t\(id)"; $0.currency = "USD"; $0.active = true }) }
        }
        _ = try await rgsClient.loadEstate { w in
            for e in 0..<2 {
                try await w.write(.with { $0.environment = .with { $0.environmentId = "env-\(e)"; $0.requiredCurrencies = ["EUR"] } })
            }
            var bo: Int64 = 0
            for s in 0..<servers {
                try await w.write(.with { $0.server = .with { $0.serverId = "srv-\(s)"; $0.environmentId = "env-\(s % 2)"; $0.active = true } })
                for _ in 0..<tablesPerServer {
                    bo += 1
                    let id = bo
                    try await w.write(.with { $0.table = .with { $0.tableId = "t\(id)"; $0.serverId = "srv-\(s)"; $0.boId = id; $0.currency = "USD"; $0.active = true } })
                    if id % 2 == 0 {
                        try await w.write(.with { $0.traffic = .with { $0.tableId = "t\(id)"; $0.period = "2026-10"; $0.rounds = 3; $0.ggr = 1 } })
                    }
                }
            }
        }
        progress("cleanup run")
        let (gamesCPU, rgsCPU) = (WireBenchmark.cpuSeconds(games.processIdentifier), WireBenchmark.cpuSeconds(rgs.processIdentifier))
        let start = ContinuousClock.now
        _ = try await rgsClient.kickoffCleanup(.with { $0.runId = "bench" })
        var operations: Set<String> = []
        while true {
            let run = try await rgsClient.getCleanupRun(.with { $0.runId = "bench" })
            let jobs = run.environments.flatMap(\.servers)
            if jobs.allSatisfy({ $0.state == .done }) {
                operations = Set(jobs.flatMap(\.operationIds))
                break
            }
            guard !jobs.contains(where: { $0.state == .failed }) else { throw LaunchError("a cleanup job failed: \(run)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        while !operations.isEmpty {
            for id in operations {
                let op = try await gamesClient.getOperation(.with { $0.operationId = id })
                if op.status == .deferred { operations.remove(id) } else if op.status == .failed { throw LaunchError("operation failed: \(op.failure)") }
            }
            if !operations.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        let seconds = StorageBenchmark.elapsedSeconds(since: start)
        let figures = CleanupFigures(seconds: seconds, gamesCPU: WireBenchmark.cpuSeconds(games.processIdentifier) - gamesCPU,
                                     rgsCPU: WireBenchmark.cpuSeconds(rgs.processIdentifier) - rgsCPU)
        let check = try await gamesClient.getGameTables(.with { $0.ids = [1, total / 2, total] }).tables
        guard check.count == 3, check.allSatisfy({ !$0.active }) else { throw LaunchError("tables were not archived") }
        return figures
    }

    /// The reference: the same archive (update + version row per table, batches of 100, one commit each)
    /// as bare SQLite in this process.
    static func bareSQLite(tables: Int) async throws -> Double {
        let dir = try freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir + "/bare.sqlite", owner: "bench", migrations: [Migration("bench", 1, "tables", """
            CREATE TABLE game_tables (id INTEGER PRIMARY KEY, name TEXT, currency TEXT, active INTEGER, archived_at INTEGER);
            CREATE TABLE versions (version_id INTEGER PRIMARY KEY AUTOINCREMENT, table_id INTEGER, before_json TEXT, after_json TEXT);
            """)])
        defer { db.close() }
        try await db.write { tx in
            for id in 1...tables { try tx.execute("INSERT INTO game_tables VALUES (?, ?, 'USD', 1, NULL)", [id, "t\(id)"]) }
        }
        let start = ContinuousClock.now
        for batch in stride(from: 1, through: tables, by: 100) {
            try await db.write { tx in
                for id in batch..<min(batch + 100, tables + 1) {
                    try tx.execute("UPDATE game_tables SET active = 0, archived_at = 1 WHERE id = ?", [id])
                    try tx.execute("INSERT INTO versions (table_id, before_json, after_json) VALUES (?, '{}', '{}')", [id])
                }
            }
        }
        return StorageBenchmark.elapsedSeconds(since: start)
    }

    /// Events/s from the first publish until the consumer's lag is 0.
    static func runtimeEvents(count: Int, batch: Int) async throws -> Double {
        let dir = try freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"games": {"batchPauseSeconds": 0.0, "runtimeBatchSize": \#(batch)}}"#
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let (games, port) = try serve("games", dir: dir, config: dir + "/config.json")
        defer { games.terminate(); games.waitUntilExit() }
        let c = channel(port)
        defer { c.close() }
        let runtime = Croupier_Gametables_V1_GameRuntime.Client(channel: c)
        for g in 0..<100 { _ = try await runtime.registerGame(.with { $0.gameId = "g\(g)" }) }
        let stats = #"[{"user_id":"a","planets":3,"population":40,"ships_built":2},{"user_id":"b","planets":4,"population":30,"ships_built":5}]"#
        let start = ContinuousClock.now
        for chunk in stride(from: 0, to: count, by: 5_000) {
            let events = (chunk..<min(chunk + 5_000, count)).map { i in
                Croupier_Gametables_V1_RuntimeEvent.with {
                    $0.kind = "runtime_snapshot_update"
                    $0.fields = ["game_id": "g\(i % 100)", "current_turn": String(i / 100), "runtime_status": "running", "player_turn_stats": stats]
                }
            }
            _ = try await runtime.publishRuntimeEvents(.with { $0.events = events })
        }
        while try await runtime.getConsumerStatus(.init()).lag > 0 { try await Task.sleep(for: .milliseconds(5)) }
        return Double(count) / StorageBenchmark.elapsedSeconds(since: start)
    }

    static func run(arguments: [String]) async throws -> Int32 {
        let tables = option("--tables", in: arguments).flatMap(Int.init) ?? 100_000
        let events = option("--events", in: arguments).flatMap(Int.init) ?? 200_000
        let out = option("--out", in: arguments) ?? "bench/results/gametables.md"
        let servers = 20
        let run = try await cleanup(servers: servers, tablesPerServer: tables / servers)
        let cleanupSeconds = run.seconds
        progress("bare SQLite reference")
        let bareSeconds = try await bareSQLite(tables: tables)
        progress("runtime events, batched")
        let batched = try await runtimeEvents(count: events, batch: 512)
        progress("runtime events, one commit per event")
        let single = try await runtimeEvents(count: events / 10, batch: 1)
        let report = """
            # croupier bench gametables

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; RGS and Games each in its own process, SQLite WAL, synchronous=FULL
            - cleanup: \(formatRate(Double(tables))) tables on \(servers) servers in 2 environments, all in a foreign currency
              (half with traffic), Games pause 0; timed from KickoffCleanup until every job is DONE (RGS settled
              every slice after Games applied it) and every Games operation is DEFERRED
            - reference (same run): the same archive as bare SQLite batches of 100 (update + version row), one process, no RPC
            - runtime: snapshot events for 100 games with 2 players' stats, published in chunks of 5,000 over Wire;
              timed from the first publish until the consumer's lag is 0; offset saved in the same transaction as the effects

            | what | figure |
            | --- | --- |
            | cleanup end to end, \(formatRate(Double(tables))) tables | \(String(format: "%.1f", cleanupSeconds)) s (\(formatRate(Double(tables) / cleanupSeconds)) tables/s) |
            | CPU used meanwhile: Games process, RGS process | \(String(format: "%.2f s, %.2f s", run.gamesCPU, run.rgsCPU)) |
            | bare SQLite archive of the same tables (reference) | \(String(format: "%.1f", bareSeconds)) s (\(formatRate(Double(tables) / bareSeconds)) tables/s) |
            | runtime events consumed, 512 per commit | \(formatRate(batched)) events/s |
            | runtime events consumed, one commit per event (reference) | \(formatRate(single)) events/s |

            Aims (issue #9): cleanup of 100,000 tables ≤ 30 s; ≥ 20,000 runtime events/s with a durable offset.
            """
        try record(report, to: out)
        return 0
    }
}
