import Foundation
import LocalPostgres
import LoyaltyService
import Storage
import Wire

/// `croupier bench loyalty --engine postgres --replicas 1,2,3`: durable
/// ManualReward calls over Wire to N loyalty replicas (each its own process)
/// on one PostgreSQL database, balanced by a `ReplicaChannel`, for each N.
/// Beside them, in the same run: a bare libpq client sending a reward's
/// statements (`BareLibPQRewards`, the reference), the same store called in
/// process (no RPC), and the SQLite figure.
enum LoyaltyReplicaBenchmark {
    static func run(arguments: [String], calls: Int) async throws -> Int32 {
        let counts = (option("--replicas", in: arguments) ?? "1,2,3").split(separator: ",").compactMap { Int($0) }.filter { $0 >= 1 }
        guard !counts.isEmpty else { throw LaunchError("--replicas must list replica counts, e.g. 1,2,3") }
        let out = option("--out", in: arguments) ?? "bench/results/loyalty-postgres.md"
        LoyaltyBenchmark.progress("starting a throwaway PostgreSQL cluster")
        let cluster = try PostgresCluster.shared()
        LoyaltyBenchmark.progress("bare libpq client (no RPC, no store): \(calls) rewards")
        let bareDatabase = try cluster.createDatabase()
        try LoyaltyStore(path: bareDatabase).close()  // the schema
        let bare = try BareLibPQRewards.run(url: bareDatabase, calls: calls, threads: Database.Options().connections)
        LoyaltyBenchmark.progress("in process (no RPC): \(calls) rewards")
        let direct = try await inProcess(database: try cluster.createDatabase(), calls: calls)
        var rows: [(Int, CallRates)] = []
        for n in counts {
            LoyaltyBenchmark.progress("\(n) replica(s): \(calls) rewards")
            rows.append((n, try await replicas(n, database: try cluster.createDatabase(), calls: calls)))
        }
        LoyaltyBenchmark.progress("SQLite, one server, group commit: \(calls) rewards")
        let sqlite = try await LoyaltyBenchmark.withServer(maxBatch: Database.Options().maxBatch) { client, channel in
            try await LoyaltyBenchmark.rewards(client, calls: calls, executor: channel.executor)
        }
        func row(_ what: String, _ r: CallRates) -> String {
            "| \(what) | \(formatRate(r.rps)) rewards/s | \(Int(r.p50)) µs | \(Int(r.p99)) µs | \(Int((r.rps / bare.rps * 100).rounded()))% |"
        }
        let report = """
            # croupier bench loyalty --engine postgres

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, shared by the PostgreSQL server, the replicas and the client
            - PostgreSQL: a throwaway cluster (initdb, fsync on, synchronous_commit on); each figure on a fresh database
            - load: \(LoyaltyBenchmark.inflight) concurrent callers, \(formatRate(Double(calls))) durable ManualRewards per figure
              (1,000 players; idempotency check, rate-limit count, ledger row, balance update: one SERIALIZABLE transaction each)
            - replicas: each `croupier bench loyalty-server` process with a pool of \(Database.Options().connections) libpq connections
              and, with N > 1, no spin-polling (as `croupier up` runs replicas); the client balances over them with a
              ReplicaChannel (least in flight, health-checked)

            | what | throughput | p50 | p99 | of bare libpq |
            | --- | --- | --- | --- | --- |
            \(row("bare libpq client, the same statements, \(Database.Options().connections) connections (reference)", bare))
            \(row("LoyaltyStore in process, no RPC", direct))
            \(rows.map { row("\($0.0) replica\($0.0 == 1 ? "" : "s") over Wire", $0.1) }.joined(separator: "\n"))
            \(row("SQLite, one server over Wire, group commit (reference)", sqlite))

            Aim (issue #24): 1 replica ≥ 70% of the bare libpq figure; the figure must not fall as replicas are added.
            """
        try record(report, to: out)
        return 0
    }

    /// The store on `database`, called by `inflight` tasks in this process.
    static func inProcess(database: String, calls: Int) async throws -> CallRates {
        let store = try LoyaltyStore(path: database)
        defer { store.close() }
        return try await measureCalls(inflight: LoyaltyBenchmark.inflight, total: calls) { i in
            _ = try await store.manualReward(
                ManualReward(playerID: "player-\(i % 1000)", points: 100, reason: "Benchmark goodwill reward", staffID: "staff-\(i / 5)",
                             rewardID: "bench-\(i)"),
                correlationID: "")
        }
    }

    /// `n` loyalty server processes on `database`, called through one balanced channel.
    static func replicas(_ n: Int, database: String, calls: Int) async throws -> CallRates {
        var servers: [Process] = []
        defer { for s in servers { s.terminate(); s.waitUntilExit() } }
        var addresses: [(host: String, port: UInt16)] = []
        for _ in 0..<n {
            // As `croupier up` runs them: several replicas on one host do not spin-poll.
            let (server, ready) = try WireBenchmark.spawn(
                CommandLine.arguments[0], ["bench", "loyalty-server", FileManager.default.temporaryDirectory.path, "256", database],
                ready: "READY", environment: n > 1 ? ["CROUPIER_SPIN_MICROS": "0"] : [:])
            servers.append(server)
            addresses.append(("127.0.0.1", UInt16(ready.split(separator: " ")[1])!))
        }
        let channel: any ClosableChannel = n == 1
            ? WireChannel(host: addresses[0].host, port: addresses[0].port, secret: LoyaltyBenchmark.secret, peerName: "bench", connections: 2)
            : ReplicaChannel(name: "loyalty", addresses: addresses, secret: LoyaltyBenchmark.secret, peerName: "bench")
        defer { channel.close() }
        let client = Croupier_Loyalty_V1_LoyaltyService.Client(channel: channel)
        let rates = try await LoyaltyBenchmark.rewards(client, calls: calls, executor: nil)
        let verified = try await client.verifyBalance(.init(), options: LoyaltyBenchmark.caller("auditor", LoyaltyPermission.admin))
        guard verified.consistent else { throw LaunchError("balances do not verify after the run: \(verified.mismatches.prefix(3))") }
        return rates
    }
}
