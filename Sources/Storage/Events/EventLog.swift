/// One event as stored: its offset orders it among all events of the log.
public struct StoredEvent: Sendable, Equatable {
    public let offset: Int64
    /// What the event is about, e.g. a game slug; readers may filter on it.
    public let stream: String
    public let type: String
    public let payload: [UInt8]
    public let createdAtMillis: Int64
}

public enum EventLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The events after `requested` were removed by retention; resume from `oldestAvailable` or later.
    case offsetPruned(requested: Int64, oldestAvailable: Int64)

    public var description: String {
        switch self {
        case .offsetPruned(let requested, let oldest):
            return "events after offset \(requested) were removed by retention; the oldest kept is \(oldest)"
        }
    }
}

/// An append-only log of events in its owner's database.
///
/// Guarantees: an event is appended in the same transaction as the state
/// change it describes, so it exists if and only if that change committed;
/// offsets increase in commit order and are never reused (AUTOINCREMENT), so
/// a reader that resumes after the last offset it saw misses nothing and sees
/// nothing twice. Retention removes the oldest events and records how far it
/// went, so a reader asking for removed events gets `offsetPruned`, never a
/// silent gap.
public struct EventLog: Sendable {
    let database: Database
    let clock: any StorageClock
    let signal: ChangeSignal

    public static let migrations = [
        Migration("events", 1, "event log", """
            CREATE TABLE events (
                offset INTEGER PRIMARY KEY AUTOINCREMENT,
                stream TEXT NOT NULL,
                type TEXT NOT NULL,
                payload BLOB NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX events_stream ON events (stream, offset);
            CREATE TABLE events_retention (id INTEGER PRIMARY KEY CHECK (id = 1), pruned_through INTEGER NOT NULL);
            INSERT INTO events_retention (id, pruned_through) VALUES (1, 0);
            """),
        // On PostgreSQL, identity values are taken at insert but become visible at commit, in any
        // order: a reader at offset 6 could pass 5 for good. Appends there take the next offset from
        // this row instead; its row lock orders them, so offsets become visible in increasing order.
        Migration("events", 2, "the offset counter", """
            CREATE TABLE events_counter (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
            INSERT INTO events_counter (id, last) SELECT 1, coalesce(max(offset), 0) FROM events;
            """),
    ]

    public init(database: Database, clock: any StorageClock = SystemClock()) {
        self.database = database
        self.clock = clock
        self.signal = database.signal("events")
    }

    /// Appends inside the caller's transaction; returns the event's offset.
    @discardableResult
    public func append(_ tx: Transaction, stream: String, type: String, payload: [UInt8]) throws -> Int64 {
        let offset: Int64
        switch tx.connection.dialect {
        case .sqlite:
            // One writer: AUTOINCREMENT offsets commit in order.
            offset = try tx.insert(
                "INSERT INTO events (stream, type, payload, created_at) VALUES (?, ?, ?, ?)", [stream, type, payload, clock.nowMillis()],
                returning: "offset")
        case .postgres:
            // Concurrent writers: the counter row's lock makes offsets commit in order (see migration events 2).
            offset = try tx.queryFirst("UPDATE events_counter SET last = last + 1 WHERE id = 1 RETURNING last") { $0.int64(0) } ?? 0
            try tx.execute(
                "INSERT INTO events (offset, stream, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                [offset, stream, type, payload, clock.nowMillis()])
        }
        let signal = self.signal
        tx.wake(signal)
        return offset
    }

    /// Events with offset > `after`, oldest first; all streams when `stream` is nil.
    public func read(after: Int64, limit: Int, stream: String? = nil) async throws -> [StoredEvent] {
        try await database.read { db in
            let pruned = try db.queryFirst("SELECT pruned_through FROM events_retention WHERE id = 1") { $0.int64(0) } ?? 0
            if after < pruned {
                throw EventLogError.offsetPruned(requested: after, oldestAvailable: pruned + 1)
            }
            let map = { (r: Row) in
                StoredEvent(offset: r.int64(0), stream: r.string(1), type: r.string(2), payload: r.blob(3), createdAtMillis: r.int64(4))
            }
            if let stream {
                return try db.query(
                    "SELECT offset, stream, type, payload, created_at FROM events WHERE stream = ? AND offset > ? ORDER BY offset LIMIT ?",
                    [stream, after, limit], map)
            }
            return try db.query(
                "SELECT offset, stream, type, payload, created_at FROM events WHERE offset > ? ORDER BY offset LIMIT ?",
                [after, limit], map)
        }
    }

    /// The newest offset ever assigned, 0 before the first append (pruning does not lower it).
    public func lastOffset() async throws -> Int64 {
        try await database.read { db in
            switch db.dialect {
            case .sqlite: return try db.queryFirst("SELECT seq FROM sqlite_sequence WHERE name = 'events'") { $0.int64(0) } ?? 0
            case .postgres: return try db.queryFirst("SELECT last FROM events_counter WHERE id = 1") { $0.int64(0) } ?? 0
            }
        }
    }

    /// How many events of each type `stream` holds (pruned ones are gone).
    public func countsByType(stream: String) async throws -> [String: Int] {
        let rows = try await database.read { db in
            try db.query("SELECT type, COUNT(*) FROM events WHERE stream = ? GROUP BY type", [stream]) { ($0.string(0), $0.int(1)) }
        }
        return Dictionary(rows, uniquingKeysWith: +)
    }

    /// Replays events after `after`, then follows new ones as they commit.
    public func subscribe(after: Int64, stream: String? = nil, batchSize: Int = 512, poll: Duration = .milliseconds(500))
        -> EventSubscription
    {
        EventSubscription(log: self, after: after, stream: stream, batchSize: batchSize, poll: poll)
    }

    /// Retention: removes events created before `olderThanMillis`. Returns how many were removed.
    @discardableResult
    public func prune(olderThanMillis cutoff: Int64) async throws -> Int {
        try await database.write { tx in
            guard let through = try tx.queryFirst(
                "SELECT max(offset) FROM events WHERE created_at < ?", [cutoff], { $0.optionalInt64(0) }) ?? nil
            else { return 0 }
            let removed = try tx.execute("DELETE FROM events WHERE offset <= ?", [through])
            try tx.execute("UPDATE events_retention SET pruned_through = max(pruned_through, ?) WHERE id = 1", [through])
            return removed
        }
    }
}

/// A resumable, gap-free stream of events. Pull-based: it reads the next
/// batch only when the consumer has taken the previous one, so a slow reader
/// costs memory for one batch, not for the whole backlog. It ends (returns
/// nil) when the iterating task is cancelled.
public struct EventSubscription: AsyncSequence, Sendable {
    public typealias Element = StoredEvent

    let log: EventLog
    let after: Int64
    let stream: String?
    let batchSize: Int
    let poll: Duration

    public struct AsyncIterator: AsyncIteratorProtocol {
        let subscription: EventSubscription
        var last: Int64
        var buffer: [StoredEvent] = []
        var index = 0

        public mutating func next() async throws -> StoredEvent? {
            try await next(isolation: nil)
        }

        /// Runs on the caller's actor (SE-0421): an event already read is
        /// handed over without leaving it. Without this, a caller on an
        /// actor (the main actor, a service's) hopped to the global executor
        /// and back for every event: 60k events/s instead of millions.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(any Error) -> StoredEvent? {
            while true {
                if index < buffer.count {
                    defer { index += 1 }
                    last = buffer[index].offset
                    return buffer[index]
                }
                if Task.isCancelled { return nil }
                let s = subscription
                let generation = s.log.signal.generation
                buffer = try await s.log.read(after: last, limit: s.batchSize, stream: s.stream)
                index = 0
                if buffer.isEmpty { await s.log.signal.wait(since: generation, timeout: s.poll) }
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self, last: after) }
}
