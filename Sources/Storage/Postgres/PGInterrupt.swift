import CLinux
import Foundation
import Synchronization

/// Lets another thread stop what a pool connection is waiting for: the
/// write of a caller that gave up (its deadline passed, it was cancelled).
///
/// A connection's thread waits for the server in `poll`, on the socket and
/// on this eventfd. Each job holds a ticket (`begin`); `fire(ticket)` wakes
/// the wait only while that job runs, so a late cancellation never reaches
/// the next job. Woken, the connection's own thread asks the server to
/// cancel the statement (`PQcancel`): a lock wait behind another replica's
/// transaction ends there, instead of committing once the lock is free,
/// long after its caller stopped waiting.
final class PGInterrupt: Sendable {
    let fd: Int32
    /// The running job's ticket (0 when none), and whether it was fired.
    private let state = Mutex<(ticket: UInt64, fired: Bool)>((0, false))
    private let counter = Atomic<UInt64>(0)

    init() { fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    deinit { close(fd) }

    /// Starts a job (its thread): returns the ticket `fire` needs.
    func begin() -> UInt64 {
        let ticket = counter.add(1, ordering: .relaxed).newValue
        state.withLock { s in
            drain()
            s = (ticket, false)
        }
        return ticket
    }

    /// Ends the job: a `fire` from now on does nothing.
    func end() { state.withLock { $0 = (0, false) } }

    /// Wakes the job holding `ticket`, if it still runs (any thread).
    func fire(_ ticket: UInt64) {
        state.withLock { s in
            guard s.ticket == ticket, !s.fired else { return }
            s.fired = true
            var one: UInt64 = 1
            _ = write(fd, &one, 8)
        }
    }

    /// Whether the running job was fired (checked before a commit).
    var isFired: Bool { state.withLock { $0.fired } }

    /// Consumes a wake-up (the waiting thread, once it has acted on it).
    func drain() {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}
