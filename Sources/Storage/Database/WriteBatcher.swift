import Foundation
import Synchronization

/// The single writer: a dedicated thread that owns the write connection and
/// folds concurrent callers' transactions into one commit (group commit).
///
/// Guarantees:
/// - each request runs in its own SAVEPOINT inside one BEGIN IMMEDIATE
///   transaction, so a request that throws rolls back alone;
/// - a caller is told its request succeeded only after the COMMIT that
///   contains it returned, i.e. after the fsync at synchronous=FULL;
/// - if the COMMIT fails, every request of the group fails;
/// - requests run one at a time in arrival order, so each sees the effects of
///   the ones before it exactly as if they had committed separately.
final class WriteBatcher: @unchecked Sendable {
    // @unchecked: `connection` is touched only by the writer thread; shared state is in `pending`.
    struct Request: Sendable {
        let perform: @Sendable (Transaction) throws -> Void
        let finish: @Sendable (Error?) -> Void
    }

    private struct State {
        var queue: [Request] = []
        var closed = false
    }

    private let connection: SQLiteConnection
    private let shared: SQLConnection
    private let maxBatch: Int
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)

    init(connection: SQLiteConnection, maxBatch: Int) {
        self.connection = connection
        shared = SQLConnection(.sqlite(connection))
        self.maxBatch = max(1, maxBatch)
        let thread = Thread { [self] in self.loop() }
        thread.name = "croupier.storage.writer"
        thread.start()
    }

    func submit(_ request: Request) {
        let accepted = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.queue.append(request)
            return true
        }
        if accepted { wake.signal() } else { request.finish(StorageError.closed) }
    }

    /// Finishes queued work, then stops the thread. Called on the writer
    /// thread itself (the last reference to the database dropped there), it
    /// does not wait: the thread stops when it returns to its loop.
    func close() {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        wake.signal()
        if Thread.current.threadDictionary[Self.ownerKey] as? String != identity { stopped.wait() }
    }

    static let ownerKey = "croupier.storage.writer"
    private var identity: String { "\(ObjectIdentifier(self))" }

    private func loop() {
        Thread.current.threadDictionary[Self.ownerKey] = identity
        while true {
            wake.wait()
            while true {
                let (batch, closed) = state.withLock { s -> ([Request], Bool) in
                    let n = min(maxBatch, s.queue.count)
                    let batch = Array(s.queue.prefix(n))
                    s.queue.removeFirst(n)
                    return (batch, s.closed)
                }
                if batch.isEmpty {
                    if closed { stopped.signal(); return }
                    break
                }
                run(batch)
            }
        }
    }

    private func run(_ batch: [Request]) {
        var outcomes: [Error?] = Array(repeating: nil, count: batch.count)
        var hooks: [@Sendable () -> Void] = []
        do {
            try connection.execute("BEGIN IMMEDIATE")
        } catch {
            for r in batch { r.finish(error) }
            return
        }
        for (i, request) in batch.enumerated() {
            let tx = Transaction(connection: shared)
            do {
                try connection.execute("SAVEPOINT request")
                do {
                    try request.perform(tx)
                    try connection.execute("RELEASE request")
                    hooks += tx.afterCommitHooks
                } catch {
                    try connection.execute("ROLLBACK TO request")
                    try connection.execute("RELEASE request")
                    outcomes[i] = error
                }
            } catch {
                // The savepoint machinery itself failed: the whole group is suspect.
                _ = try? connection.execute("ROLLBACK")
                for r in batch { r.finish(error) }
                return
            }
        }
        do {
            try connection.execute("COMMIT")
        } catch {
            _ = try? connection.execute("ROLLBACK")
            for r in batch { r.finish(error) }
            return
        }
        for hook in hooks { hook() }
        for (i, r) in batch.enumerated() { r.finish(outcomes[i]) }
    }
}
