import Foundation
import Synchronization

/// Read-only connections for concurrent readers (WAL lets them run beside
/// the writer). Reads run on Dispatch threads, never on the Swift
/// concurrency pool, because SQLite calls block.
final class ReaderPool: Sendable {
    private let free: Mutex<[SQLiteConnectionBox]>
    private let available: DispatchSemaphore
    private let queue = DispatchQueue(label: "croupier.storage.readers", attributes: .concurrent)

    init(connections: [SQLiteConnection]) {
        free = Mutex(connections.map(SQLiteConnectionBox.init))
        available = DispatchSemaphore(value: connections.count)
    }

    /// Runs `body` on a borrowed connection inside one read transaction, so
    /// every query in it sees the same committed snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [self] in
                available.wait()
                let box = free.withLock { $0.removeLast() }
                defer {
                    free.withLock { $0.append(box) }
                    available.signal()
                }
                continuation.resume(with: Result {
                    try box.connection.execute("BEGIN")
                    defer { _ = try? box.connection.execute("COMMIT") }
                    return try body(box.shared)
                })
            }
        }
    }
}

/// A connection handed between threads by the pool, used by one at a time.
final class SQLiteConnectionBox: @unchecked Sendable {
    let connection: SQLiteConnection
    let shared: SQLConnection
    init(_ connection: SQLiteConnection) {
        self.connection = connection
        shared = SQLConnection(.sqlite(connection))
    }
}
