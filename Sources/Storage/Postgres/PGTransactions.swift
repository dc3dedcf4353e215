import Foundation

/// Transactions on one PostgreSQL connection (run on its pool thread).
enum PGTransactions {
    /// How many times a write may lose a serialization race before it runs
    /// alone. Each retry before that waits a random, growing pause.
    static let racingAttempts = 3

    /// A bound on attempts in all: one running alone cannot lose a race, so
    /// reaching it means something other than contention keeps failing.
    static let maxAttempts = 10

    /// The advisory lock every write transaction holds shared, and a write
    /// that kept losing holds exclusively (advisory locks are per database,
    /// so this is one lock per service database).
    static let writersLock: Int64 = 0x6372_6f75_7069_6572  // "croupier"

    /// SERIALIZABLE, so concurrent writers (other connections, other
    /// replicas) behave as if they ran one at a time; a transaction that
    /// loses a race (SQLSTATE 40001, or a deadlock) is rolled back and run
    /// again after a short random pause.
    ///
    /// No write starves: every write holds `writersLock` shared for its
    /// transaction, and after `racingAttempts` lost races a write takes it
    /// exclusively *before* it begins. PostgreSQL queues later shared
    /// requests behind the exclusive one, so it waits only for the writes in
    /// flight, then takes its snapshot and runs with no concurrent writer (a
    /// blocked writer has read nothing yet, and reads are not SERIALIZABLE,
    /// so neither can make it the loser). A long transaction against a hot
    /// row (a lease heartbeat, the event counter) therefore costs one pause of
    /// the other writers, not an endless retry loop.
    static func write<T>(
        _ connection: PGConnection, mode: Database.PostgresWrites, keys: [String], _ body: (Transaction) throws -> T
    ) -> Result<T, any Error> {
        let isolation = mode == .serializable ? "SERIALIZABLE" : "READ COMMITTED"
        let keyLocks = Set(keys).sorted().map { ", pg_advisory_xact_lock(\(lockSQL($0)))" }.joined()
        let shared = SQLConnection(.postgres(connection))
        var attempt = 0
        while true {
            attempt += 1
            let alone = attempt > racingAttempts
            let tx = Transaction(connection: shared)
            do {
                // Index scans even on small tables: a sequential scan takes a predicate lock on the whole
                // table, and every concurrent SERIALIZABLE writer would conflict with it.
                if alone {
                    try connection.executeScript("SELECT pg_advisory_lock(\(writersLock))")
                    try connection.executeScript("BEGIN ISOLATION LEVEL \(isolation); SET LOCAL enable_seqscan = off; SELECT 1\(keyLocks)")
                } else {
                    try connection.executeScript("""
                        BEGIN ISOLATION LEVEL \(isolation); SET LOCAL enable_seqscan = off; \
                        SELECT pg_advisory_xact_lock_shared(\(writersLock))\(keyLocks)
                        """)
                }
                let value = try body(tx)
                // Its caller gave up (`Database.write`): roll back rather than commit late.
                if connection.interrupt.isFired { throw CancellationError() }
                try connection.executeScript(commitScript(notifying: tx.notifications))
                if alone { try connection.executeScript("SELECT pg_advisory_unlock(\(writersLock))") }
                for hook in tx.afterCommitHooks { hook() }
                return .success(value)
            } catch {
                if !connection.isBroken {
                    try? connection.executeScript("ROLLBACK")
                    if alone { try? connection.executeScript("SELECT pg_advisory_unlock(\(writersLock))") }
                }
                // A cancel meant for an earlier job can land late, on this one's statement: run it again.
                let strayCancel = (error as? StorageError)?.isCancelledStatement == true && !connection.interrupt.isFired
                guard let storage = error as? StorageError, storage.isRetryableConflict || strayCancel, attempt < maxAttempts else {
                    return .failure(error)
                }
                if !alone { usleep(UInt32.random(in: 50...(1_000 * UInt32(attempt)))) }
            }
        }
    }

    /// The two-int advisory lock of a store's key: the key class, and the key's digest.
    static func lockSQL(_ key: String) -> String { "\(keyClass), \(digest(key))" }

    /// A name's FNV-1a digest: the same in every process, for advisory lock keys.
    static func digest(_ name: String) -> Int32 {
        var h: UInt32 = 2_166_136_261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int32(bitPattern: h)
    }

    /// The class of key locks ("keys"), apart from the singletons' ("crou") and the writers' lock.
    static let keyClass: Int32 = 0x6b65_7973

    /// The channel every process of a database listens on (`PGListener`).
    static let channel = "croupier"

    /// COMMIT, preceded by a NOTIFY per named signal the transaction raised:
    /// one round trip, and the notifications go out with the commit or not at all.
    static func commitScript(notifying names: Set<String>) -> String {
        names.sorted().map { "SELECT pg_notify('\(channel)', '\($0.replacingOccurrences(of: "'", with: "''"))'); " }.joined() + "COMMIT"
    }

    /// One snapshot for every query of `body`.
    static func read<T>(_ connection: PGConnection, _ body: (SQLConnection) throws -> T) -> Result<T, any Error> {
        Result {
            try connection.executeScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { if !connection.isBroken { try? connection.executeScript("COMMIT") } }
            return try body(SQLConnection(.postgres(connection)))
        }
    }
}
