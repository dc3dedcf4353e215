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
        let rounds = max(1, option("--rounds", in: arguments).flatMap { Int($0) } ?? 3)
        let out = option("--out", in: arguments) ?? "bench/results/loyalty-postgres.md"
        LoyaltyBenchmark.progress("starting a throwaway PostgreSQL cluster")
        let cluster = try PostgresCluster.shared()
        // Every figure is measured once per round, the rounds interleaved, and the median reported:
        // this VM's speed drifts by ±15% within minutes.
        var bares: [CallRates] = [], directs: [CallRates] = [], sqlites: [CallRates] = []
        var byCount: [Int: [CallRates]] = [:]
        for round in 1...rounds {
            LoyaltyBenchmark.progress("round \(round)/\(rounds): bare libpq client (no RPC, no store), \(calls) rewards")
            let bareDatabase = try cluster.createDatabase()
            try LoyaltyStore(path: bareDatabase).close()  // the schema
            // Its threads block in libpq: wait for them off the Swift pool.
            bares.append(try await onBlockingThread { try BareLibPQRewards.run(url: bareDatabase, calls: calls, threads: Database.Options().connections) })
            LoyaltyBenchmark.progress("round \(round)/\(rounds): in process (no RPC)")
            directs.append(try await inProcess(database: try cluster.createDatabase(), calls: calls))
            for n in counts {
                LoyaltyBenchmark.progress("round \(round)/\(rounds): \(n) replica(s)")
                byCount[n, default: []].append(try await replicas(n, database: try cluster.createDatabase(), calls: calls))
            }
            LoyaltyBenchmark.progress("round \(round)/\(rounds): SQLite, one server, group commit")
            sqlites.append(try await LoyaltyBenchmark.withServer(maxBatch: Database.Options().maxBatch) { client, channel in
                try await LoyaltyBenchmark.rewards(client, calls: calls, executor: channel.executor)
            })
        }
        func median(_ runs: [CallRates]) -> CallRates { runs.sorted { $0.rps < $1.rps }[runs.count / 2] }
        let (bare, direct, sqlite) = (median(bares), median(directs), median(sqlites))
        let rows = counts.map { ($0, median(byCount[$0] ?? [])) }
        let spread = { (runs: [CallRates]) in runs.map { formatRate($0.rps) }.joined(separator: " / ") }
        func row(_ what: String, _ r: CallRates, _ runs: [CallRates]) -> String {
            "| \(what) | \(formatRate(r.rps)) rewards/s | \(Int(r.p50)) µs | \(Int(r.p99)) µs | \(Int((r.rps / bare.rps * 100).rounded()))% | \(spread(runs)) |"
        }
        let report = """
            # croupier bench loyalty --engine postgres

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, shared by the PostgreSQL server, the replicas and the client
            - PostgreSQL: a throwaway cluster (initdb, fsync on, synchronous_commit on); each figure on a fresh database
            - rounds: \(rounds), interleaved; each row is the median round (all rounds in the last column)
            - load: \(LoyaltyBenchmark.inflight) concurrent callers, \(formatRate(Double(calls))) durable ManualRewards per figure
              (1,000 players; idempotency check, rate-limit count, ledger row, balance update: one SERIALIZABLE transaction each)
            - replicas: `croupier bench loyalty-server` processes configured as `croupier up` runs replicas: with N > 1,
              \(Database.Options().connections) libpq connections shared (at least 4 each) and no spin-polling; the client
              balances over them with a ReplicaChannel (least in flight, health-checked)

            | what | throughput | p50 | p99 | of bare libpq | every round |
            | --- | --- | --- | --- | --- | --- |
            \(row("bare libpq client, the same statements, \(Database.Options().connections) connections (reference)", bare, bares))
            \(row("LoyaltyStore in process, no RPC", direct, directs))
            \(rows.map { row("\($0.0) replica\($0.0 == 1 ? "" : "s") over Wire", $0.1, byCount[$0.0] ?? []) }.joined(separator: "\n"))
            \(row("SQLite, one server over Wire, group commit (reference)", sqlite, sqlites))

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
            // As `croupier up` runs them: several replicas on one host share the connections and do not spin-poll.
            let (server, ready) = try WireBenchmark.spawn(
                CommandLine.arguments[0], ["bench", "loyalty-server", FileManager.default.temporaryDirectory.path, "256", database],
                ready: "READY",
                environment: n > 1 ? ["CROUPIER_SPIN_MICROS": "0", "CROUPIER_PG_CONNECTIONS": String(Supervisor.replicaConnections(of: n))] : [:])
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
