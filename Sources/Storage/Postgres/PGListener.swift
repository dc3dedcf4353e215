import CLibPQ
import Foundation
import Synchronization

/// Carries named signals between the processes sharing a PostgreSQL
/// database: on its own connection and thread it LISTENs on the database's
/// channel, and raises the local signal each notification names. Writers
/// notify at commit (`PGTransactions.commitScript`), so a waiter in any
/// replica wakes when an event, a queue message or a slice is committed,
/// not at its next poll. After a lost connection it reconnects and raises
/// every signal once, since notifications sent meanwhile are gone (waiters
/// re-check their state, so an extra wake costs one query).
final class PGListener: Sendable {
    private let url: String
    private let signals: KeyedSignals
    private let stopped = Atomic<Bool>(false)

    init(url: String, signals: KeyedSignals) {
        self.url = url
        self.signals = signals
        let thread = Thread { [self] in run() }
        thread.name = "pg listener"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func run() {
        var connection: PGConnection?
        var listenedBefore = false
        while !stopped.load(ordering: .relaxed) {
            guard let c = connection else {
                do {
                    let c = try PGConnection(url: url)
                    try c.executeScript("LISTEN \(PGTransactions.channel)")
                    connection = c
                    if listenedBefore { signals.signalAll() }
                    listenedBefore = true
                } catch {
                    usleep(500_000)
                }
                continue
            }
            do { try waitForNotifications(c) } catch { connection = nil }
        }
    }

    /// Waits up to 500 ms for the socket, then raises the signal of each notification received.
    private func waitForNotifications(_ c: PGConnection) throws {
        var pfd = pollfd(fd: PQsocket(c.handle), events: Int16(POLLIN), revents: 0)
        guard pfd.fd >= 0 else { throw StorageError.connection("the listener's connection has no socket") }
        _ = poll(&pfd, 1, 500)
        guard PQconsumeInput(c.handle) == 1 else {
            throw StorageError.connection(String(cString: PQerrorMessage(c.handle)))
        }
        while let n = PQnotifies(c.handle) {
            let name = String(cString: n.pointee.extra)
            PQfreemem(n)
            signals.signal(for: name).signal()
        }
    }
}
