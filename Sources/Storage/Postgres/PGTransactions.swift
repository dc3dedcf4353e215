import Foundation

/// Transactions on one PostgreSQL connection (run on its pool thread).
enum PGTransactions {
    /// How often a write that lost a serialization race runs again before its
    /// caller hears of it. Hot rows (a log's offset counter, a queue group's
    /// head) make losers common under many concurrent writers; each retry
    /// waits a random, growing pause (up to 20 ms) so they spread out.
    static let maxAttempts = 500

    /// SERIALIZABLE, so concurrent writers (other connections, other
    /// replicas) behave as if they ran one at a time; a transaction that
    /// loses a race (SQLSTATE 40001, or a deadlock) is rolled back and run
    /// again after a short random pause.
    static func write<T>(_ connection: PGConnection, _ body: (Transaction) throws -> T) -> Result<T, any Error> {
        let shared = SQLConnection(.postgres(connection))
        var attempt = 0
        while true {
            attempt += 1
            let tx = Transaction(connection: shared)
            do {
                try connection.executeScript("BEGIN ISOLATION LEVEL SERIALIZABLE")
                let value = try body(tx)
                try connection.executeScript("COMMIT")
                for hook in tx.afterCommitHooks { hook() }
                return .success(value)
            } catch {
                if !connection.isBroken { try? connection.executeScript("ROLLBACK") }
                guard let storage = error as? StorageError, storage.isRetryableConflict, attempt < maxAttempts else {
                    return .failure(error)
                }
                usleep(UInt32.random(in: 50...(1_000 * UInt32(min(attempt, 20)))))
            }
        }
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
