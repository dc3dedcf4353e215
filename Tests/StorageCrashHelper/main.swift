import Foundation
import Storage
import Synchronization

// A child process for StorageTests' crash tests: it writes, holds queue
// messages or reports what the database holds; the test SIGKILLs it mid-work.
//
//   StorageCrashHelper write DB           16 concurrent writers; prints "committed N" after each commit
//   StorageCrashHelper seed DB N          N messages, one per group
//   StorageCrashHelper hold DB MS COUNT   receives COUNT messages with visibility MS, prints "holding ID", then sleeps
//   StorageCrashHelper receive DB MAX     receives, prints "received ID COUNT" per message
//   StorageCrashHelper report DB          prints "item N", "message N", "event N" lines and "integrity ok"
//   StorageCrashHelper singleton DB NAME  contends for singleton NAME; prints "owner NAME" when it runs it, then sleeps

let migrations = [Migration("crash", 1, "items", "CREATE TABLE items (n INTEGER PRIMARY KEY);")]
    + DurableQueue.migrations + EventLog.migrations

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let args = CommandLine.arguments
guard args.count >= 3 else {
    say("usage: StorageCrashHelper write|seed|hold|receive|report DB ...")
    exit(2)
}
let db = try Database(path: args[2], owner: "crash-test", migrations: migrations)
var config = QueueConfiguration(name: "crash")
config.visibilityTimeoutMillis = 60_000
let queue = DurableQueue(database: db, configuration: config)
let events = EventLog(database: db)

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}

switch args[1] {
case "write":
    let counter = Counter()
    // Continue after whatever survived an earlier run.
    let highest = try await db.read { try $0.queryFirst("SELECT coalesce(max(n), 0) FROM items", [], { $0.int(0) }) ?? 0 }
    counter.value.store(highest, ordering: .relaxed)
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<16 {
            group.addTask {
                while true {
                    let n = counter.value.add(1, ordering: .relaxed).newValue
                    do {
                        try await db.write { tx in
                            try tx.execute("INSERT INTO items (n) VALUES (?)", [n])
                            try queue.send(tx, group: "g\(n % 8)", body: Array(String(n).utf8), deduplicationID: String(n))
                            try events.append(tx, stream: "crash", type: "item", payload: Array(String(n).utf8))
                        }
                        say("committed \(n)")
                    } catch {
                        say("error \(error)")
                        exit(1)
                    }
                }
            }
        }
    }
case "singleton":
    let name = args.count > 3 ? args[3] : "crash"
    let singleton = Singleton(database: db, name: name, holder: "helper-\(getpid())", checkEvery: .milliseconds(100)) {
        say("owner \(name)")
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
    }
    singleton.start()
    while true { try await Task.sleep(for: .seconds(3600)) }
case "seed":
    let count = Int(args[3])!
    try await db.write { tx in
        for i in 0..<count { try queue.send(tx, group: "group-\(i)", body: Array("m\(i)".utf8)) }
    }
case "hold":
    let held = try await queue.receive(max: Int(args[4])!, visibilityTimeoutMillis: Int64(args[3])!)
    for m in held { say("holding \(m.id)") }
    say("held")
    while true { try await Task.sleep(for: .seconds(60)) }
case "receive":
    for m in try await queue.receive(max: Int(args[3])!) { say("received \(m.id) \(m.receiveCount)") }
case "report":
    try await db.read { c in
        for n in try c.query("SELECT n FROM items ORDER BY n", [], { $0.int(0) }) { say("item \(n)") }
        for b in try c.query("SELECT body FROM queue_messages ORDER BY id", [], { String(decoding: $0.blob(0), as: UTF8.self) }) { say("message \(b)") }
        for p in try c.query("SELECT payload FROM events ORDER BY offset", [], { String(decoding: $0.blob(0), as: UTF8.self) }) {
            say("event \(p)")
        }
        let integrity = c.dialect == .postgres ? "ok" : try c.queryFirst("PRAGMA integrity_check", [], { $0.string(0) }) ?? "?"
        say("integrity \(integrity)")
    }
default:
    say("unknown mode \(args[1])")
    exit(2)
}
