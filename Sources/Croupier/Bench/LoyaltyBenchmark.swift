import Foundation
import LocalPostgres
import LoyaltyService
import Storage
import Wire

/// `croupier bench loyalty`: durable ManualReward and CompleteRatingSlip
/// calls over Wire from 64 concurrent callers to a `loyalty` server process,
/// with group commit on (the default) and off (one fsync per call) in the
/// same run.
enum LoyaltyBenchmark {
    static let secret = WireBenchmark.secret
    static let inflight = 64

    /// `croupier bench loyalty-server DIR MAX_BATCH [DATABASE_URL]`: the server process
    /// (on the SQLite file in DIR, or on the PostgreSQL database given).
    static func serve(directory: String, maxBatch: Int, database: String?) async throws -> Never {
        var options = Database.Options()
        options.maxBatch = maxBatch
        let store = try LoyaltyStore(path: database ?? directory + "/loyalty.sqlite", options: options)
        let server = WireServer(name: "loyalty-bench", services: [LoyaltyAPI(store: store, log: LoyaltyLog(sink: { _ in }))], secret: secret)
        let bound = try server.start(port: 0)
        FileHandle.standardOutput.write(Data("READY \(bound)\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    static func caller(_ principal: String, _ permission: String) -> CallOptions {
        var m = Metadata()
        m.set("x-croupier-principal", principal)
        m.set("x-croupier-permissions", permission)
        return CallOptions(metadata: m)
    }

    struct Figures {
        var rewards: CallRates
        var completions: CallRates
    }

    /// `calls` ManualRewards from `inflight` callers through `client`: 1,000 players; each staff member issues 5.
    static func rewards(_ client: Croupier_Loyalty_V1_LoyaltyService.Client, calls: Int, executor: (any TaskExecutor)?) async throws -> CallRates {
        try await measureCalls(inflight: inflight, total: calls, executor: executor) { i in
            let staff = "staff-\(i / 5)"
            _ = try await client.manualReward(.with {
                $0.playerId = "player-\(i % 1000)"
                $0.points = 100
                $0.reason = "Benchmark goodwill reward"
                $0.staffId = staff
                $0.rewardId = "bench-\(i)"
            }, options: caller(staff, LoyaltyPermission.award))
        }
    }

    /// One server with `maxBatch`, a fresh database: `calls` rewards, then `calls` slip completions.
    static func measure(maxBatch: Int, calls: Int) async throws -> Figures {
        try await withServer(maxBatch: maxBatch) { client, channel in try await measure(client, channel, maxBatch: maxBatch, calls: calls) }
    }

    /// A loyalty server process with `maxBatch` on a fresh SQLite file, and a client of it, for `body`.
    static func withServer<T>(
        maxBatch: Int, _ body: (Croupier_Loyalty_V1_LoyaltyService.Client, WireChannel) async throws -> T
    ) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-loyalty-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, ready) = try WireBenchmark.spawn(
            CommandLine.arguments[0], ["bench", "loyalty-server", dir, String(maxBatch)], ready: "READY")
        defer { server.terminate(); server.waitUntilExit() }
        let port = UInt16(ready.split(separator: " ")[1])!
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: secret, peerName: "bench", connections: 2)
        defer { channel.close() }
        return try await body(Croupier_Loyalty_V1_LoyaltyService.Client(channel: channel), channel)
    }

    private static func measure(
        _ client: Croupier_Loyalty_V1_LoyaltyService.Client, _ channel: WireChannel, maxBatch: Int, calls: Int
    ) async throws -> Figures {
        let mode = maxBatch > 1 ? "group commit" : "one commit each"
        progress("\(mode): \(calls) ManualReward")
        // Each staff member issues 5 rewards (under the 10-a-minute limit); 1,000 players share them.
        let rewards = try await rewards(client, calls: calls, executor: channel.executor)

        progress("\(mode): starting \(calls) slips (not timed)")
        let pit = caller("pit", LoyaltyPermission.slip)
        let table = Croupier_Loyalty_V1_GameSettings.with {
            $0.houseEdgePercent = 2
            $0.decisionsPerHour = 60
            $0.pointsPerTheoreticalWin = 1
        }
        _ = try await measureCalls(inflight: inflight, total: calls, executor: channel.executor) { i in
            _ = try await client.startRatingSlip(.with {
                $0.slipId = "slip-\(i)"
                $0.playerId = "player-\(i % 1000)"
                $0.tableId = "t-\(i % 40)"
                $0.gameSettings = table
                $0.averageBet = 25
            }, options: pit)
        }
        progress("\(mode): \(calls) CompleteRatingSlip")
        let completions = try await measureCalls(inflight: inflight, total: calls, executor: channel.executor) { i in
            _ = try await client.completeRatingSlip(.with {
                $0.slipId = "slip-\(i)"
                $0.durationSeconds = 3600
            }, options: pit)
        }
        let verified = try await client.verifyBalance(.init(), options: caller("auditor", LoyaltyPermission.admin))
        guard verified.consistent else { throw LaunchError("balances do not verify after the run: \(verified.mismatches.prefix(3))") }
        return Figures(rewards: rewards, completions: completions)
    }

    static func run(arguments: [String]) async throws -> Int32 {
        let calls = option("--calls", in: arguments).flatMap(Int.init) ?? 20_000
        Posix.raiseDescriptorLimit()
        switch option("--engine", in: arguments) ?? "sqlite" {
        case "sqlite": break
        case "postgres": return try await LoyaltyReplicaBenchmark.run(arguments: arguments, calls: calls)
        case let other: throw LaunchError("--engine must be sqlite or postgres, not \(other)")
        }
        let out = option("--out", in: arguments) ?? "bench/results/loyalty.md"
        let on = try await measure(maxBatch: Database.Options().maxBatch, calls: calls)
        let off = try await measure(maxBatch: 1, calls: calls)
        func row(_ what: String, _ r: CallRates) -> String {
            "| \(what) | \(formatRate(r.rps)) calls/s | \(Int(r.p50)) µs | \(Int(r.p99)) µs |"
        }
        let report = """
            # croupier bench loyalty

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; loyalty server in its own process, SQLite WAL, synchronous=FULL
            - load: \(inflight) concurrent callers over Wire (2 connections), \(formatRate(Double(calls))) calls per figure,
              each call its own durable transaction (idempotency check, rate-limit count, ledger row, balance update)
            - reference (same run): the same load with group commit off (one commit and fsync per call)

            | what | throughput | p50 | p99 |
            | --- | --- | --- | --- |
            \(row("ManualReward, group commit", on.rewards))
            \(row("ManualReward, one commit each (reference)", off.rewards))
            \(row("CompleteRatingSlip, group commit", on.completions))
            \(row("CompleteRatingSlip, one commit each (reference)", off.completions))

            Aim (issue #7): ≥ 10,000 durable rewards/s with 64 callers.
            """
        try record(report, to: out)
        return 0
    }

    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench loyalty: \(line)\n".utf8))
    }
}
