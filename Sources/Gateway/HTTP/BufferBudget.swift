import Synchronization

/// The bytes the whole gateway process holds for its clients: request bytes
/// not yet forwarded and response bytes not yet sent. Each connection counts
/// its own share against its own cap (`HTTPLimits.maxConnectionBufferedBytes`)
/// and takes it from here, against the process cap; what a client cannot
/// make the gateway hold is what this refuses.
final class BufferBudget: Sendable {
    let capBytes: Int
    private let used = Atomic<Int>(0)

    init(capBytes: Int) { self.capBytes = capBytes }

    var usedBytes: Int { used.load(ordering: .relaxed) }

    /// True while the process holds less than its cap.
    var hasRoom: Bool { usedBytes < capBytes }

    /// Takes `n` bytes if the total stays within the cap.
    func reserve(_ n: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            if current + n > capBytes { return false }
            let (done, seen) = used.compareExchange(expected: current, desired: current + n, ordering: .relaxed)
            if done { return true }
            current = seen
        }
    }

    /// Counts `n` bytes that are held already (bytes a client sent within the
    /// window it was given); the cap then holds back further credit.
    func add(_ n: Int) { used.add(n, ordering: .relaxed) }

    func release(_ n: Int) { used.subtract(n, ordering: .relaxed) }
}
