import Foundation
import StagingService
import Storage
import Synchronization
import Wire

/// `croupier bench staging`: a 150,000-entity import streamed over Wire to a
/// staging process, through merge and full diff (time, peak RSS), beside a
/// bare SQLite bulk insert of the same rows as the ceiling; then manual
/// override → `diff-change` event latency.
enum StagingBenchmark {
    static let secret = "bench-staging-secret"

    static func progress(_ line: String) { FileHandle.standardError.write(Data("bench staging: \(line)\n".utf8)) }

    static func entities(_ n: Int) -> [Croupier_Staging_V1_EntityInput] {
        (0..<n).map { i in
            .with {
                $0.entityType = i % 50 == 0 ? "product" : "card"
                $0.slug = "entity-\(i)"
                $0.fields = [
                    "name": "Entity \(i)", "expansion": "set-\(i % 40)", "rarity": i % 7 == 0 ? "rare" : "common",
                    "text": "When this enters the battlefield, draw a card. \(i)",
                ]
            }
        }
    }

    /// Peak resident memory of a process (VmHWM), in MiB.
    static func peakRSS(_ pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1])
        else { return -1 }
        return kib / 1024
    }

    struct ImportFigures {
        var seconds: Double
        var uploadSeconds: Double
        var peakMiB: Double
        var overrideLatencies: [Double]
    }

    static func importAndOverrides(count: Int, overrides: Int) async throws -> ImportFigures {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-staging-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (p, port) = try serveComponent("staging", environment: [
            "CROUPIER_DATA_DIR": dir, "CROUPIER_INTERNAL_SECRET": secret, "CROUPIER_STAGING_PORT": "0",
        ])
        defer { p.terminate(); p.waitUntilExit() }
        let channel = WireChannel(host: "127.0.0.1", port: port, secret: Array(secret.utf8), peerName: "bench")
        defer { channel.close() }
        let client = Croupier_Staging_V1_StagingService.Client(channel: channel)
        let all = entities(count)
        // A watcher that records when each diff-change event arrives.
        let diffArrivals = Mutex<[(offset: Int64, entity: String, at: ContinuousClock.Instant)]>([])
        let watcher = Task {
            try await EventWatcher(channel: channel, game: "bench").run(after: 0) { e in
                if e.type == "diff-change" { diffArrivals.withLock { $0.append((e.offset, e.details["entity"] ?? "", .now)) } }
            }
        }
        defer { watcher.cancel() }

        progress("importing \(count) entities")
        let start = ContinuousClock.now
        _ = try await client.importGame { w in
            try await w.write(.with { $0.start = .with { $0.gameSlug = "bench" } })
            for s in stride(from: 0, to: all.count, by: 5_000) {
                try await w.write(.with { $0.batch = .with { $0.entities = Array(all[s..<min(s + 5_000, all.count)]) } })
            }
        }
        let uploaded = ContinuousClock.now
        while diffArrivals.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(2)) }
        let done = diffArrivals.withLock { $0[0].at }
        let seconds = StorageBenchmark.elapsedSeconds(since: start) - StorageBenchmark.elapsedSeconds(since: done)
        let peak = peakRSS(p.processIdentifier)

        progress("\(overrides) overrides → diff-change")
        _ = try await client.deploy(.with { $0.gameSlug = "bench" })
        var latencies: [Double] = []
        for i in 0..<overrides {
            let slug = "entity-\(i * 50 + 1)"  // a card (every 50th entity is a product)
            let seen = diffArrivals.withLock { $0.count }
            let t0 = ContinuousClock.now
            _ = try await client.createOverride(.with {
                $0.gameSlug = "bench"
                $0.entityType = "card"
                $0.slug = slug
                $0.fields = ["name": "Errata \(i)"]
            })
            while true {
                if let hit = diffArrivals.withLock({ $0.dropFirst(seen).first { $0.entity == "card/" + slug } }) {
                    latencies.append(microseconds(hit.at - t0) / 1000)
                    break
                }
                try await Task.sleep(for: .microseconds(200))
            }
        }
        latencies.sort()
        return ImportFigures(
            seconds: seconds, uploadSeconds: microseconds(uploaded - start) / 1e6, peakMiB: peak, overrideLatencies: latencies)
    }

    /// The ceiling: the same rows inserted into a bare SQLite table in batches of 5,000, one process.
    static func bareInsert(count: Int) async throws -> Double {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-staging-bare-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir + "/bare.sqlite", owner: "bench", migrations: [Migration("bench", 1, "rows", """
            CREATE TABLE entities (game_slug TEXT, entity_type TEXT, slug TEXT, fields BLOB, PRIMARY KEY (game_slug, entity_type, slug)) WITHOUT ROWID;
            """)])
        defer { db.close() }
        let rows = entities(count).map { e in
            (e.entityType, e.slug, Croupier_Staging_V1_FieldMap.with { $0.values = e.fields }.serializedBytes())
        }
        let start = ContinuousClock.now
        for s in stride(from: 0, to: rows.count, by: 5_000) {
            let batch = Array(rows[s..<min(s + 5_000, rows.count)])
            try await db.write { tx in
                for (t, slug, f) in batch { try tx.execute("INSERT INTO entities VALUES ('bench', ?, ?, ?)", [t, slug, f]) }
            }
        }
        return StorageBenchmark.elapsedSeconds(since: start)
    }

    static func run(arguments: [String]) async throws -> Int32 {
        let count = option("--entities", in: arguments).flatMap(Int.init) ?? 150_000
        let overrides = option("--overrides", in: arguments).flatMap(Int.init) ?? 200
        let out = option("--out", in: arguments) ?? "bench/results/staging.md"
        let f = try await importAndOverrides(count: count, overrides: overrides)
        progress("bare SQLite reference")
        let bare = try await bareInsert(count: count)
        func pct(_ p: Int) -> String { String(format: "%.1f ms", f.overrideLatencies[min(f.overrideLatencies.count - 1, f.overrideLatencies.count * p / 100)]) }
        let report = """
            # croupier bench staging

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; staging in its own process, SQLite WAL, synchronous=FULL
            - import: \(formatRate(Double(count))) entities (4 string fields each) streamed over Wire in batches of 5,000; timed from the
              first message until the IMPORT `diff-change` event reached a WatchEvents client: durable upload, merge into staging,
              DiffQueue request over Wire, full diff stored with impact analysis
            - reference (same run): the same rows inserted into one bare SQLite table in batches of 5,000, one process, no RPC
            - override latency: \(overrides) CreateOverride calls one after another on a deployed game; time from the call until its
              `diff-change` (fast path) arrived on the event stream

            | what | figure |
            | --- | --- |
            | import → merge → full diff, \(formatRate(Double(count))) entities | \(String(format: "%.2f", f.seconds)) s (upload \(String(format: "%.2f", f.uploadSeconds)) s) |
            | bare SQLite bulk insert of the same rows (ceiling) | \(String(format: "%.2f", bare)) s |
            | staging process peak RSS | \(String(format: "%.0f", f.peakMiB)) MiB |
            | override → diff-change latency | p50 \(pct(50)), p99 \(pct(99)) |

            Aims (issue #8): import end to end ≤ 10 s with ≤ 512 MiB; override → diff-change p50 ≤ 50 ms.
            """
        try record(report, to: out)
        return 0
    }
}
