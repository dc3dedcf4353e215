import Foundation
import Synchronization

/// A service's SQLite database: one writer thread with group commit, a pool
/// of reader connections, migrations applied at open.
///
/// All I/O happens on the database's own threads; callers `await`. Durability
/// is never traded for speed: at `synchronous=FULL` a `write` returns only
/// after the commit holding it reached the disk; throughput comes from many
/// callers sharing one commit.
public final class Database: Sendable {
    public struct Options: Sendable {
        public var synchronous: Synchronous = .full
        public var readers: Int = 4
        /// Most transactions folded into one commit; 1 disables group commit.
        public var maxBatch: Int = 256
        public var busyTimeoutMillis: Int32 = 5_000

        public init() {}
    }

    public let path: String
    private let writer: WriteBatcher
    private let readers: ReaderPool
    private let signals = Mutex<[String: ChangeSignal]>([:])

    /// Opens or creates the database at `path` for `owner` (a service name)
    /// and applies pending `migrations`. Fails with a clear error if the file
    /// is not a Croupier database, belongs to another owner, or was migrated
    /// by a newer build.
    public init(path: String, owner: String, migrations: [Migration], options: Options = Options()) throws {
        self.path = path
        let writeConnection = try SQLiteConnection(
            path: path, readOnly: false, synchronous: options.synchronous, busyTimeoutMillis: options.busyTimeoutMillis)
        try SchemaManager.prepare(writeConnection, path: path, owner: owner, migrations: migrations)
        var readConnections: [SQLiteConnection] = []
        for _ in 0..<max(1, options.readers) {
            readConnections.append(try SQLiteConnection(
                path: path, readOnly: true, synchronous: options.synchronous, busyTimeoutMillis: options.busyTimeoutMillis))
        }
        readers = ReaderPool(connections: readConnections)
        writer = WriteBatcher(connection: writeConnection, maxBatch: options.maxBatch)
    }

    deinit { writer.close() }

    /// Runs `body` as one atomic transaction: it commits (durably) if `body`
    /// returns, and rolls back if it throws, rethrowing the error.
    @discardableResult
    public func write<T: Sendable>(_ body: @escaping @Sendable (Transaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let result = ResultSlot<T>()
            writer.submit(WriteBatcher.Request(
                perform: { tx in result.value = try body(tx) },
                finish: { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: result.value!) }
                }))
        }
    }

    /// Runs `body` on a reader connection, against one committed snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await readers.read(body)
    }

    /// Stops accepting writes once queued ones have committed.
    public func close() { writer.close() }

    /// The in-process signal for `name` (one per queue or log), raised after
    /// commits that wrote to it, so waiters wake without polling.
    public func signal(_ name: String) -> ChangeSignal {
        signals.withLock { table in
            if let s = table[name] { return s }
            let s = ChangeSignal()
            table[name] = s
            return s
        }
    }
}

/// Carries a write's result from the writer thread to its continuation.
private final class ResultSlot<T>: @unchecked Sendable {
    // Written once on the writer thread before `finish`, read once after.
    var value: T?
}
