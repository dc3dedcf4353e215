import Foundation
import Storage

/// `croupier bench storage`: durable write transactions with and without
/// group commit (same run, same disk), queue round trips, event-log append
/// and tail. All at synchronous=FULL on fresh database files.
enum StorageBenchmark {
    static let migrations = [Migration("bench", 1, "rows", "CREATE TABLE rows (id INTEGER PRIMARY KEY, value BLOB NOT NULL);")]
        + DurableQueue.migrations + EventLog.migrations

    static func freshDatabase(_ dir: URL, _ name: String, maxBatch: Int) throws -> Database {
        var options = Database.Options()
        options.maxBatch = maxBatch
        return try Database(path: dir.appendingPathComponent(name + ".sqlite").path, owner: "bench", migrations: migrations, options: options)
    }

    /// Single-row write transactions from `callers` concurrent tasks for `seconds`; returns tx/s.
    static func writeRate(_ db: Database, callers: Int, seconds: Double) async throws -> Double {
        let payload = [UInt8](repeating: 7, count: 100)
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    var n = 0
                    while ContinuousClock.now < end {
                        try await db.write { try $0.execute("INSERT INTO rows (value) VALUES (?)", [payload]) }
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / elapsedSeconds(since: start)
    }

    static func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Messages through send → receive → delete with 64 senders and a 64-way consumer.
    static func queueRate(_ db: Database, messages: Int) async throws -> Double {
        var config = QueueConfiguration(name: "bench")
        config.deduplicationWindowMillis = 1
        let queue = DurableQueue(database: db, configuration: config)
        let start = ContinuousClock.now
        let consumer = Task {
            await QueueConsumer(queue: queue, concurrency: 64, idlePoll: .milliseconds(5), handler: { _ in }).run()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for s in 0..<64 {
                group.addTask {
                    for i in stride(from: s, to: messages, by: 64) {
                        try await queue.send(group: "g\(i % 256)", body: Array("message \(i)".utf8), deduplicationID: String(i))
                    }
                }
            }
            try await group.waitForAll()
        }
        while true {
            let stats = try await queue.stats()
            if stats.depth + stats.inFlight == 0 { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        let elapsed = elapsedSeconds(since: start)
        consumer.cancel()
        await consumer.value
        return Double(messages) / elapsed
    }

    /// Events appended in transactions of `batch`, then read back through a subscription.
    static func eventRates(_ db: Database, events: Int, batch: Int) async throws -> (append: Double, tail: Double) {
        let log = EventLog(database: db)
        let payload = [UInt8](repeating: 1, count: 64)
        var start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for b in 0..<(events / batch) {
                group.addTask {
                    try await db.write { tx in
                        for _ in 0..<batch { try log.append(tx, stream: "s\(b % 16)", type: "bench", payload: payload) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let append = Double(events) / elapsedSeconds(since: start)
        start = ContinuousClock.now
        var seen = 0
        for try await _ in log.subscribe(after: 0, batchSize: 1024) {
            seen += 1
            if seen == events { break }
        }
        return (append, Double(events) / elapsedSeconds(since: start))
    }

    static func run(arguments: [String]) async throws -> Int32 {
        let seconds = Double(option("--seconds", in: arguments) ?? "") ?? 3
        let outputPath = option("--out", in: arguments) ?? "bench/results/storage.md"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("croupier-bench-storage-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        // Interleave the two modes so both see the same disk conditions.
        var grouped: [Double] = []
        var ungrouped: [Double] = []
        for round in 0..<3 {
            ungrouped.append(try await writeRate(try freshDatabase(dir, "ungrouped\(round)", maxBatch: 1), callers: 64, seconds: seconds / 3))
            grouped.append(try await writeRate(try freshDatabase(dir, "grouped\(round)", maxBatch: 256), callers: 64, seconds: seconds / 3))
        }
        let g = grouped.sorted()[1]
        let u = ungrouped.sorted()[1]
        let queue = try await queueRate(try freshDatabase(dir, "queue", maxBatch: 256), messages: 20_000)
        let events = try await eventRates(try freshDatabase(dir, "events", maxBatch: 256), events: 200_000, batch: 1_000)

        let report = """
            # croupier bench storage

            - date: \(ISO8601DateFormatter().string(from: Date()))
            - machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; SQLite WAL, synchronous=FULL, fresh files under \(FileManager.default.temporaryDirectory.path)
            - write figures: median of 3 interleaved rounds of \(String(format: "%.1f", seconds / 3)) s per mode, 64 concurrent callers, one 100-byte row per transaction

            | what | figure |
            | --- | --- |
            | durable 1-row transactions, group commit (≤ 256 per commit) | \(formatRate(g)) tx/s |
            | durable 1-row transactions, one commit (fsync) each — reference, same run | \(formatRate(u)) tx/s |
            | group commit speed-up | \(String(format: "%.1f", g / u))× |
            | queue: send + receive + delete, 64 senders, 64-way consumer, 256 groups | \(formatRate(queue)) msg/s |
            | event log: append, 1,000 events per transaction | \(formatRate(events.append)) events/s |
            | event log: tail through a subscription from offset 0 | \(formatRate(events.tail)) events/s |

            """
        try record(report, to: outputPath)
        return 0
    }
}
