import Foundation
import Synchronization

/// A service's database, on SQLite (a file: one writer thread with group
/// commit, a pool of reader connections) or PostgreSQL (a `postgres://` URL:
/// a small pool of libpq connections on their own threads). Migrations are
/// applied at open. Stores see the same API on both (`Dialect` keeps the
/// SQL differences in one place).
///
/// All I/O happens on the database's own threads; callers `await`. A
/// `write` returns only after its commit is durable. Both engines run
/// write transactions as if one at a time: SQLite has one writer; on
/// PostgreSQL each runs SERIALIZABLE and is run again when it loses a
/// serialization race, so the body must do nothing but database work
/// (side effects go in `afterCommit`).
public final class Database: Sendable {
    public struct Options: Sendable {
        public var synchronous: Synchronous = .full
        public var readers: Int = 4
        /// Most transactions folded into one commit; 1 disables group commit (SQLite).
        public var maxBatch: Int = 256
        public var busyTimeoutMillis: Int32 = 5_000
        /// Connections per process (PostgreSQL): `CROUPIER_PG_CONNECTIONS` if set, else 16.
        /// `croupier up` divides one budget among a component's replicas: the database's
        /// cores, not the number of replicas, decide how many transactions it runs well at once.
        public var connections: Int = ProcessInfo.processInfo.environment["CROUPIER_PG_CONNECTIONS"].flatMap { Int($0) }.map { max(1, $0) } ?? 16
        /// How write transactions are kept apart on PostgreSQL (SQLite has one writer).
        public var postgresWrites: PostgresWrites = .serializable

        public init() {}
    }

    /// How PostgreSQL write transactions keep the stores' invariants.
    public enum PostgresWrites: Sendable {
        /// SERIALIZABLE, run again on a lost race: a store needs to declare
        /// nothing. Transactions that read index ranges others insert into
        /// (a count, a missed lookup) lose often under many writers.
        case serializable
        /// READ COMMITTED, with every invariant guarded by key locks the
        /// store takes (`write(locking:)`, `Transaction.lock`): transactions
        /// on the same keys run one after another, the others side by side,
        /// and none is run again for a race it did not really have. Every
        /// write of such a store must lock what it reads to decide.
        case keyLocked
    }

    enum Engine: Sendable {
        case sqlite(WriteBatcher, ReaderPool)
        case postgres(PGPool, PGListener)
    }

    /// The file path, or the PostgreSQL URL without its password.
    public let path: String
    private let engine: Engine
    private let signals: KeyedSignals
    private let mode: PostgresWrites

    /// Whether `location` names a PostgreSQL database rather than a SQLite file.
    public static func isPostgresURL(_ location: String) -> Bool {
        location.hasPrefix("postgres://") || location.hasPrefix("postgresql://")
    }

    /// Opens or creates the database at `location` (a SQLite file path or a
    /// `postgres://` URL) for `owner` (a service name) and applies pending
    /// `migrations`. Fails with a clear error if it is not a Croupier
    /// database, belongs to another owner, or was migrated by a newer build.
    public init(path location: String, owner: String, migrations: [Migration], options: Options = Options()) throws {
        let signals = KeyedSignals()
        self.signals = signals
        mode = options.postgresWrites
        if Self.isPostgresURL(location) {
            let shown = PGConnection.redacted(location)
            path = shown
            let pool = try PGPool(url: location, size: options.connections)
            let schema = Result<Void, any Error> {
                let connection = try PGConnection(url: location)
                try PGSchemaManager.prepare(connection, location: shown, owner: owner, migrations: migrations)
            }
            if case .failure(let error) = schema {
                pool.close()
                throw error
            }
            engine = .postgres(pool, PGListener(url: location, signals: signals))
            return
        }
        path = location
        let writeConnection = try SQLiteConnection(
            path: location, readOnly: false, synchronous: options.synchronous, busyTimeoutMillis: options.busyTimeoutMillis)
        try SchemaManager.prepare(writeConnection, path: location, owner: owner, migrations: migrations)
        var readConnections: [SQLiteConnection] = []
        for _ in 0..<max(1, options.readers) {
            readConnections.append(try SQLiteConnection(
                path: location, readOnly: true, synchronous: options.synchronous, busyTimeoutMillis: options.busyTimeoutMillis))
        }
        engine = .sqlite(WriteBatcher(connection: writeConnection, maxBatch: options.maxBatch), ReaderPool(connections: readConnections))
    }

    deinit { close() }

    /// The PostgreSQL URL (with its password) when the engine is PostgreSQL: for connections of one's own (`Singleton`).
    var postgresURL: String? {
        if case .postgres(let pool, _) = engine { return pool.url }
        return nil
    }

    public var dialect: Dialect {
        if case .postgres = engine { return .postgres }
        return .sqlite
    }

    /// Runs `body` as one atomic transaction: it commits (durably) if `body`
    /// returns, and rolls back if it throws, rethrowing the error.
    ///
    /// `keys`: locks taken before the body runs (in sorted order, so two
    /// writers never wait for each other crosswise): on PostgreSQL, writes
    /// naming a common key run one at a time. SQLite runs every write alone.
    ///
    /// A write whose task is cancelled never commits after that (it throws
    /// CancellationError): a call that ran out of time, or whose client went
    /// away, must not change anything later, when a newer write may already
    /// have been made. Queued, it never runs (a write queued behind a lost
    /// database link would otherwise commit once the link is back). On
    /// PostgreSQL, running, it is stopped where it waits (a lock held by
    /// another replica's transaction, which would otherwise commit it once
    /// freed) and rolled back; cancelled as its COMMIT goes out, it may
    /// still commit. On SQLite a begun write finishes: it waits for nothing
    /// but the disk. A write made by a task already cancelled (cleanup after
    /// a failure) runs.
    @discardableResult
    public func write<T: Sendable>(locking keys: [String] = [], _ body: @escaping @Sendable (Transaction) throws -> T) async throws -> T {
        let abandoned = Abandonment()
        let cleanup = Task.isCancelled
        return try await withTaskCancellationHandler {
            switch engine {
            case .sqlite(let writer, _):
                return try await withCheckedThrowingContinuation { continuation in
                    let result = ResultSlot<T>()
                    writer.submit(WriteBatcher.Request(
                        perform: { tx in
                            if abandoned.isSet { throw CancellationError() }
                            result.value = try body(tx)
                        },
                        finish: { error in
                            if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: result.value!) }
                        }))
                }
            case .postgres(let pool, _):
                let mode = self.mode
                return try await withCheckedThrowingContinuation { continuation in
                    pool.submit { connection, error in
                        guard let connection else {
                            return continuation.resume(throwing: abandoned.isSet ? CancellationError() : error ?? StorageError.closed)
                        }
                        guard abandoned.attach(connection.interrupt) else { return continuation.resume(throwing: CancellationError()) }
                        let result = PGTransactions.write(connection, mode: mode, keys: keys, body)
                        connection.interrupt.end()
                        if case .failure = result, abandoned.isSet { return continuation.resume(throwing: CancellationError()) }
                        continuation.resume(with: result)
                    }
                }
            }
        } onCancel: {
            if !cleanup { abandoned.abandon() }
        }
    }

    /// Runs `body` against one committed snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        switch engine {
        case .sqlite(_, let readers):
            return try await readers.read(body)
        case .postgres(let pool, _):
            return try await withCheckedThrowingContinuation { continuation in
                pool.submit { connection, error in
                    guard let connection else { return continuation.resume(throwing: error ?? StorageError.closed) }
                    continuation.resume(with: PGTransactions.read(connection, body))
                }
            }
        }
    }

    /// Stops accepting work once queued writes have committed.
    public func close() {
        switch engine {
        case .sqlite(let writer, _): writer.close()
        case .postgres(let pool, let listener):
            listener.stop()
            pool.close()
        }
    }

    /// The in-process signal for `name` (one per queue or log), raised after
    /// commits that wrote to it, so waiters wake without polling.
    public func signal(_ name: String) -> ChangeSignal { signals.signal(for: name) }
}

/// Set once, read from any thread (a write's caller gave up).
public final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    public var isSet: Bool { value.load(ordering: .acquiring) }
    public func set() { value.store(true, ordering: .releasing) }
    public init() {}
}

/// A write's caller gave up: the write must not commit from then on. On
/// PostgreSQL it reaches the connection running the write, if one does.
final class Abandonment: Sendable {
    private let state = Mutex<(abandoned: Bool, running: (PGInterrupt, UInt64)?)>((false, nil))

    var isSet: Bool { state.withLock { $0.abandoned } }

    /// The caller gave up (any thread).
    func abandon() {
        let running = state.withLock { s in
            s.abandoned = true
            return s.running
        }
        if let (interrupt, ticket) = running { interrupt.fire(ticket) }
    }

    /// The write starts on the connection owning `interrupt`; false if the caller already gave up.
    func attach(_ interrupt: PGInterrupt) -> Bool {
        let ticket = interrupt.begin()
        let attached = state.withLock { s in
            guard !s.abandoned else { return false }
            s.running = (interrupt, ticket)
            return true
        }
        if !attached { interrupt.end() }
        return attached
    }
}

/// Carries a write's result from the writer thread to its continuation.
private final class ResultSlot<T>: @unchecked Sendable {
    // Written once on the writer thread before `finish`, read once after.
    var value: T?
}
