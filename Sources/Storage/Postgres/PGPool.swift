import Foundation
import Synchronization

/// A few PostgreSQL connections, each owned by its own thread (libpq calls
/// block; they never run on an event loop or the Swift concurrency pool).
/// Jobs queue in arrival order and go to the first free connection. A
/// broken connection is reopened for the next job.
final class PGPool: Sendable {
    typealias Job = @Sendable (PGConnection?, (any Error)?) -> Void

    private struct State {
        var queue: [Job] = []
        var closed = false
    }

    let url: String
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let size: Int

    /// Opens the first connection at once (so a bad URL fails here), the others on their threads.
    init(url: String, size: Int) throws {
        self.url = url
        self.size = max(1, size)
        let first = try PGConnection(url: url)
        for n in 0..<self.size {
            let box = PGConnectionBox(n == 0 ? first : nil)
            let thread = Thread { [self] in self.loop(box) }
            thread.name = "croupier.storage.pg\(n)"
            thread.start()
        }
    }

    /// Runs `job` on a free connection (nil with the error when none can be opened).
    func submit(_ job: @escaping Job) {
        let accepted = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.queue.append(job)
            return true
        }
        if accepted { wake.signal() } else { job(nil, StorageError.closed) }
    }

    /// Finishes queued jobs, then closes every connection. Called on one
    /// of the pool's own threads (the last reference to the database dropped
    /// there), it does not wait: that thread stops when it returns.
    func close() {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        for _ in 0..<size { wake.signal() }
        let own = Thread.current.threadDictionary[Self.ownerKey] as? String == identity
        for _ in 0..<(own ? size - 1 : size) { stopped.wait() }
    }

    static let ownerKey = "croupier.storage.pool"
    private var identity: String { "\(ObjectIdentifier(self))" }

    private func loop(_ box: PGConnectionBox) {
        Thread.current.threadDictionary[Self.ownerKey] = identity
        while true {
            wake.wait()
            let (job, closed) = state.withLock { s -> (Job?, Bool) in
                s.queue.isEmpty ? (nil, s.closed) : (s.queue.removeFirst(), s.closed)
            }
            guard let job else {
                if closed {
                    box.connection = nil
                    stopped.signal()
                    return
                }
                continue
            }
            if box.connection == nil || box.connection!.isBroken {
                box.connection = nil
                do { box.connection = try PGConnection(url: url) } catch {
                    job(nil, error)
                    continue
                }
            }
            job(box.connection, nil)
            // More queued work than wake-ups is impossible: one signal per job, plus one per thread at close.
        }
    }
}

/// A connection owned by one pool thread.
final class PGConnectionBox: @unchecked Sendable {
    var connection: PGConnection?
    init(_ connection: PGConnection?) { self.connection = connection }
}
