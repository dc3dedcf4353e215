/// A durable queue with Amazon SQS FIFO semantics, stored in its owner's
/// SQLite database.
///
/// Guarantees:
/// - within a message group, messages are delivered in send order and one at
///   a time: a group's next message is invisible while its head is in flight;
///   different groups are delivered independently;
/// - a send with a de-duplication id (explicit, or SHA-256 of the body) seen
///   inside the window enqueues nothing and returns the original id (with
///   `.whilePending`, only while the original is still undelivered);
/// - a handler that cannot start yet (`postpone`) gives its receive back: a
///   wait is not a failure and never leads to the dead-letter queue;
/// - a received message that is not deleted reappears when its visibility
///   timeout passes, including after the consumer process died;
/// - a message received `maxReceiveCount` times moves to the dead-letter
///   queue on its next delivery attempt instead of being delivered; redrive
///   sends it again at the end of its group;
/// - `send(_:…)` inside the caller's transaction is an outbox: the message
///   exists if and only if the caller's transaction committed;
/// - a message may carry its origin, the request that sent it (a W3C
///   traceparent, as SQS's AWSTraceHeader attribute, and a correlation id):
///   delivered with it, kept by redrive, and no part of de-duplication;
/// - an operator may pause the queue (Sidekiq's quiet, Oban's pause): from
///   the pause's commit no message is delivered, by any process sharing
///   the database, until it is resumed; sends are still accepted, and
///   messages already in flight finish. The pause is stored, so it outlives
///   restarts.
public struct DurableQueue: Sendable {
    public let configuration: QueueConfiguration
    let database: Database
    let clock: any StorageClock
    let signal: ChangeSignal

    /// The queue's tables; include them in the owning database's migrations.
    public static let migrations = [
        Migration("queue", 1, "messages and de-duplication", """
            CREATE TABLE queue_messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL,
                group_id TEXT NOT NULL,
                body BLOB NOT NULL,
                sent_at INTEGER NOT NULL,
                visible_at INTEGER NOT NULL,
                receive_count INTEGER NOT NULL DEFAULT 0,
                receipt TEXT,
                dead INTEGER NOT NULL DEFAULT 0,
                died_at INTEGER,
                -- 1 on the oldest live message of its group: the only one deliverable.
                head INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX queue_messages_group ON queue_messages (queue, group_id, dead, id);
            CREATE INDEX queue_messages_heads ON queue_messages (queue, visible_at) WHERE head = 1;
            CREATE INDEX queue_messages_dead ON queue_messages (queue, dead, id);
            CREATE TABLE queue_dedup (
                queue TEXT NOT NULL,
                dedup_id TEXT NOT NULL,
                message_id INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                PRIMARY KEY (queue, dedup_id)
            );
            """),
        Migration("queue", 2, "a message carries its sender's trace header (SQS AWSTraceHeader)", """
            ALTER TABLE queue_messages ADD COLUMN trace_header TEXT;
            """),
        Migration("queue", 3, "a message carries its sender's correlation id", """
            ALTER TABLE queue_messages ADD COLUMN correlation_id TEXT;
            """),
        Migration("queue", 4, "a queue can be paused: a row while it is", """
            CREATE TABLE queue_pauses (
                queue TEXT PRIMARY KEY,
                paused_at INTEGER NOT NULL,
                paused_by TEXT NOT NULL
            );
            """),
    ]

    public init(database: Database, configuration: QueueConfiguration, clock: any StorageClock = SystemClock()) {
        self.configuration = configuration
        self.database = database
        self.clock = clock
        self.signal = database.signal("queue:" + configuration.name)
    }

    var name: String { configuration.name }

    // MARK: Sending

    /// Enqueues inside the caller's transaction (outbox).
    @discardableResult
    public func send(
        _ tx: Transaction, group: String, body: [UInt8], deduplicationID: String? = nil, scope: DeduplicationScope = .window,
        origin: MessageOrigin = MessageOrigin()
    ) throws -> SendResult {
        guard !group.isEmpty else { throw QueueError.emptyGroupID }
        guard body.count <= configuration.maxMessageBytes else {
            throw QueueError.messageTooLarge(size: body.count, max: configuration.maxMessageBytes)
        }
        let now = clock.nowMillis()
        let dedup = deduplicationID ?? sha256Hex(body)
        if let original = try tx.queryFirst(
            "SELECT message_id FROM queue_dedup WHERE queue = ? AND dedup_id = ? AND expires_at > ?", [name, dedup, now],
            { $0.int64(0) })
        {
            let pending = try tx.queryFirst(
                "SELECT 1 FROM queue_messages WHERE id = ? AND dead = 0 AND receive_count = 0", [original], { _ in true }) != nil
            if scope == .window || pending { return SendResult(messageID: original, duplicate: true) }
        }
        let groupIsEmpty = try tx.queryFirst(
            "SELECT 1 FROM queue_messages WHERE queue = ? AND group_id = ? AND dead = 0 LIMIT 1", [name, group], { _ in true }) == nil
        let id = try tx.insert(
            """
            INSERT INTO queue_messages (queue, group_id, body, sent_at, visible_at, head, trace_header, correlation_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [name, group, body, now, now, groupIsEmpty, origin.traceHeader, origin.correlationID], returning: "id")
        try tx.execute(
            """
            INSERT INTO queue_dedup (queue, dedup_id, message_id, expires_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (queue, dedup_id) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
            """,
            [name, dedup, id, now + configuration.deduplicationWindowMillis])
        let signal = self.signal
        tx.wake(signal)
        return SendResult(messageID: id, duplicate: false)
    }

    /// Enqueues in a transaction of its own.
    @discardableResult
    public func send(
        group: String, body: [UInt8], deduplicationID: String? = nil, scope: DeduplicationScope = .window, origin: MessageOrigin = MessageOrigin()
    ) async throws -> SendResult {
        try await database.write { tx in
            try self.send(tx, group: group, body: body, deduplicationID: deduplicationID, scope: scope, origin: origin)
        }
    }

    // MARK: Receiving

    /// Up to `max` messages, each the head of a different group whose head is
    /// not in flight; each becomes invisible for the visibility timeout.
    public func receive(max: Int, visibilityTimeoutMillis: Int64? = nil) async throws -> [ReceivedMessage] {
        guard max > 0 else { return [] }
        let timeout = visibilityTimeoutMillis ?? configuration.visibilityTimeoutMillis
        return try await database.write { tx in
            let now = self.clock.nowMillis()
            try self.dropExpired(tx, now: now)
            if try self.pause(tx.connection) != nil { return [] }
            var delivered: [ReceivedMessage] = []
            while delivered.count < max {
                let heads = try tx.query("""
                    SELECT id, group_id, body, receive_count, sent_at, trace_header, correlation_id FROM queue_messages INDEXED BY queue_messages_heads
                    WHERE queue = ? AND head = 1 AND visible_at <= ? ORDER BY id LIMIT ?\(tx.connection.dialect.skippingLockedRows)
                    """, [self.name, now, max - delivered.count]) {
                    (id: $0.int64(0), group: $0.string(1), body: $0.blob(2), count: $0.int(3), sentAt: $0.int64(4),
                     origin: MessageOrigin(traceHeader: $0.optionalString(5), correlationID: $0.optionalString(6)))
                }
                var killed = false
                for h in heads {
                    if h.count >= self.configuration.maxReceiveCount {
                        try tx.execute(
                            "UPDATE queue_messages SET dead = 1, died_at = ?, receipt = NULL, head = 0 WHERE id = ?", [now, h.id])
                        try self.promoteHead(tx, group: h.group)
                        killed = true  // the group's next message may now be its head
                        continue
                    }
                    let receipt = "\(h.id).\(h.count + 1).\(randomHex(8))"
                    try tx.execute(
                        "UPDATE queue_messages SET receive_count = receive_count + 1, visible_at = ?, receipt = ? WHERE id = ?",
                        [now + timeout, receipt, h.id])
                    delivered.append(ReceivedMessage(
                        id: h.id, groupID: h.group, body: h.body, receiveCount: h.count + 1, receipt: receipt, sentAtMillis: h.sentAt,
                        origin: h.origin))
                }
                if !killed || heads.isEmpty { break }
            }
            return delivered
        }
    }

    /// Acknowledges a message: it is gone for good.
    public func delete(_ message: ReceivedMessage) async throws {
        try await database.write { tx in
            let n = try tx.execute("DELETE FROM queue_messages WHERE id = ? AND receipt = ? AND dead = 0", [message.id, message.receipt])
            guard n == 1 else { throw QueueError.receiptInvalid(messageID: message.id) }
            try self.promoteHead(tx, group: message.groupID)
            let signal = self.signal
            tx.wake(signal)  // the group's next message is now deliverable
        }
    }

    /// Hides the message for `timeoutMillis` from now (a heartbeat for long
    /// jobs, or a retry delay); 0 makes it visible at once.
    public func changeVisibility(_ message: ReceivedMessage, timeoutMillis: Int64) async throws {
        try await database.write { tx in
            let n = try tx.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE id = ? AND receipt = ? AND dead = 0",
                [self.clock.nowMillis() + timeoutMillis, message.id, message.receipt])
            guard n == 1 else { throw QueueError.receiptInvalid(messageID: message.id) }
            if timeoutMillis == 0 {
                let signal = self.signal
                tx.wake(signal)
            }
        }
    }

    /// The handler could not start (a lock it needs is busy): the message
    /// comes back after `delayMillis` and this receive is not counted, so
    /// waiting never uses up receives or dead-letters a message.
    public func postpone(_ message: ReceivedMessage, delayMillis: Int64) async throws {
        try await database.write { tx in
            let n = try tx.execute(
                """
                UPDATE queue_messages SET visible_at = ?, receive_count = max(0, receive_count - 1), receipt = NULL
                WHERE id = ? AND receipt = ? AND dead = 0
                """, [self.clock.nowMillis() + delayMillis, message.id, message.receipt])
            guard n == 1 else { throw QueueError.receiptInvalid(messageID: message.id) }
        }
    }

    /// An operator's release of an in-flight message (SQS
    /// ChangeMessageVisibility to 0): deliverable again at once, and the
    /// receipt its consumer holds no longer counts (after a crash, its group
    /// need not wait for the visibility timeout). False if the message is not
    /// in flight.
    @discardableResult
    public func release(messageID: Int64) async throws -> Bool {
        try await database.write { tx in
            let now = self.clock.nowMillis()
            let n = try tx.execute(
                "UPDATE queue_messages SET visible_at = ?, receipt = NULL WHERE queue = ? AND id = ? AND dead = 0 AND receipt IS NOT NULL AND visible_at > ?",
                [now, self.name, messageID, now])
            if n == 1 {
                let signal = self.signal
                tx.wake(signal)
            }
            return n == 1
        }
    }

    // MARK: Pausing

    /// Stops deliveries until `resume`; false if the queue was already paused
    /// (the first pause's time and author are kept).
    @discardableResult
    public func pause(by who: String) async throws -> Bool {
        try await database.write { tx in
            try tx.execute(
                "INSERT INTO queue_pauses (queue, paused_at, paused_by) VALUES (?, ?, ?) ON CONFLICT (queue) DO NOTHING",
                [self.name, self.clock.nowMillis(), who]) == 1
        }
    }

    /// Deliveries go on (waiting consumers are woken); false if the queue was not paused.
    @discardableResult
    public func resume() async throws -> Bool {
        try await database.write { tx in
            let resumed = try tx.execute("DELETE FROM queue_pauses WHERE queue = ?", [self.name]) == 1
            if resumed {
                let signal = self.signal
                tx.wake(signal)
            }
            return resumed
        }
    }

    private func pause(_ db: SQLConnection) throws -> QueuePause? {
        try db.queryFirst("SELECT paused_at, paused_by FROM queue_pauses WHERE queue = ?", [name]) {
            QueuePause(atMillis: $0.int64(0), by: $0.string(1))
        }
    }

    // MARK: Observing and dead letters

    /// Live messages (waiting and in flight) oldest first, after `afterID` for paging.
    public func messages(limit: Int = 100, afterID: Int64 = 0) async throws -> [QueuedMessage] {
        let now = clock.nowMillis()
        return try await database.read { db in
            try db.query("""
                SELECT id, group_id, body, receive_count, sent_at, visible_at, receipt IS NOT NULL FROM queue_messages
                WHERE queue = ? AND dead = 0 AND id > ? ORDER BY id LIMIT ?
                """, [self.name, afterID, limit]) {
                QueuedMessage(id: $0.int64(0), groupID: $0.string(1), body: $0.blob(2), receiveCount: $0.int(3), sentAtMillis: $0.int64(4),
                    visibleAtMillis: $0.int64(5), inFlight: $0.bool(6) && $0.int64(5) > now)
            }
        }
    }

    public func stats() async throws -> QueueStats {
        let now = clock.nowMillis()
        return try await database.read { db in
            let pause = try self.pause(db)
            return try db.queryFirst("""
                SELECT
                  coalesce(sum(CASE WHEN dead = 0 AND visible_at <= ?2 THEN 1 ELSE 0 END), 0),
                  coalesce(sum(CASE WHEN dead = 0 AND visible_at > ?2 THEN 1 ELSE 0 END), 0),
                  min(CASE WHEN dead = 0 THEN sent_at END),
                  coalesce(sum(dead), 0)
                FROM queue_messages WHERE queue = ?1
                """, [self.name, now]) {
                QueueStats(depth: $0.int(0), inFlight: $0.int(1),
                    oldestAgeMillis: $0.optionalInt64(2).map { max(0, now - $0) } ?? 0, deadLetters: $0.int(3), pause: pause)
            }!
        }
    }

    /// Dead letters oldest first, after `afterID` for paging.
    public func deadLetters(limit: Int = 100, afterID: Int64 = 0) async throws -> [DeadLetter] {
        try await database.read { db in
            try db.query("""
                SELECT id, group_id, body, receive_count, sent_at, died_at FROM queue_messages
                WHERE queue = ? AND dead = 1 AND id > ? ORDER BY id LIMIT ?
                """, [self.name, afterID, limit]) {
                DeadLetter(id: $0.int64(0), groupID: $0.string(1), body: $0.blob(2), receiveCount: $0.int(3),
                    sentAtMillis: $0.int64(4), diedAtMillis: $0.int64(5))
            }
        }
    }

    /// Sends dead letters again, with a fresh receive count, at the end of
    /// their groups and under new ids (as SQS redrive does); `ids` nil means
    /// all. Re-sending rather than reviving keeps FIFO's rule that a group's
    /// in-flight message is its oldest. Returns how many moved.
    @discardableResult
    public func redrive(ids: [Int64]? = nil) async throws -> Int {
        try await database.write { tx in
            let now = self.clock.nowMillis()
            let selected = try ids ?? tx.query(
                "SELECT id FROM queue_messages WHERE queue = ? AND dead = 1 ORDER BY id", [self.name]) { $0.int64(0) }
            var moved = 0
            for id in selected {
                guard let (group, body, trace, correlation) = try tx.queryFirst(
                    "SELECT group_id, body, trace_header, correlation_id FROM queue_messages WHERE queue = ? AND id = ? AND dead = 1",
                    [self.name, id], { ($0.string(0), $0.blob(1), $0.optionalString(2), $0.optionalString(3)) })
                else { continue }
                try tx.execute("DELETE FROM queue_messages WHERE id = ?", [id])
                try tx.execute(
                    """
                    INSERT INTO queue_messages (queue, group_id, body, sent_at, visible_at, trace_header, correlation_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [self.name, group, body, now, now, trace, correlation])
                try self.promoteHeadIfNone(tx, group: group)
                moved += 1
            }
            let signal = self.signal
            tx.wake(signal)
            return moved
        }
    }

    /// Retention: live messages older than the retention period and dead
    /// letters that died longer ago than it are dropped, as are expired
    /// de-duplication entries.
    func dropExpired(_ tx: Transaction, now: Int64) throws {
        let cutoff = now - configuration.retentionMillis
        let dropped = try tx.execute("""
            DELETE FROM queue_messages WHERE queue = ?1
              AND ((dead = 0 AND sent_at < ?2) OR (dead = 1 AND died_at < ?2))
            """, [name, cutoff])
        if dropped > 0 { try recomputeHeads(tx) }  // a dropped message may have been a head
        try tx.execute("DELETE FROM queue_dedup WHERE queue = ? AND expires_at <= ?", [name, now])
    }

    // Head bookkeeping. Invariant: every group with live messages has exactly
    // one head, its oldest live message. Only heads are ever delivered, so a
    // receive reads the heads index instead of searching every group.

    /// After a group's head left (deleted or dead-lettered), its next message becomes head.
    func promoteHead(_ tx: Transaction, group: String) throws {
        try tx.execute("""
            UPDATE queue_messages SET head = 1 WHERE id =
              (SELECT min(id) FROM queue_messages WHERE queue = ? AND group_id = ? AND dead = 0)
            """, [name, group])
    }

    /// Makes the group's oldest live message head if the group has none.
    func promoteHeadIfNone(_ tx: Transaction, group: String) throws {
        let hasHead = try tx.queryFirst(
            "SELECT 1 FROM queue_messages WHERE queue = ? AND group_id = ? AND dead = 0 AND head = 1", [name, group], { _ in true })
        if hasHead == nil { try promoteHead(tx, group: group) }
    }

    /// Rebuilds every head of the queue (after retention dropped messages, which is rare).
    func recomputeHeads(_ tx: Transaction) throws {
        try tx.execute("""
            UPDATE queue_messages SET head = CASE WHEN dead = 0 AND id =
              (SELECT min(id) FROM queue_messages m WHERE m.queue = queue_messages.queue
                 AND m.group_id = queue_messages.group_id AND m.dead = 0) THEN 1 ELSE 0 END
            WHERE queue = ?
            """, [name])
    }
}
