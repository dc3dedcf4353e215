import Foundation
import Synchronization

/// Work that must run in one process at a time among all the processes
/// (replicas) sharing a database: a consumer that owns an offset, a chain
/// that must not run twice, a sender, a cleaner.
///
/// - SQLite: the database file belongs to one process, so the work simply
///   runs from `start` to `stop`.
/// - PostgreSQL: each process tries, every `checkEvery`, to take a
///   session-level advisory lock named after the singleton, on a connection
///   of its own. The one that gets it runs the work; the others keep trying.
///   The owner checks its lock connection every `checkEvery`; if the
///   connection fails it cancels the work at once, then tries again. When
///   the owner dies its session ends, PostgreSQL releases the lock, and a
///   survivor takes over at its next try: within `checkEvery` of the server
///   noticing (at once for a killed process, whose socket the kernel closes;
///   within about 5 s for a host that vanished: `PGConnection.sessionSettings`).
///
/// Each term of ownership is recorded (`croupier_singleton_terms`: name,
/// holder, when), so who ran what, and when it changed hands, can be read back.
public final class Singleton: Sendable {
    public let name: String
    public let holder: String
    private let database: Database
    private let checkEvery: Duration
    private let work: @Sendable () async -> Void
    private let state = Mutex<(running: Task<Void, Never>?, stopped: Bool, thread: Bool)>((nil, false, false))
    private let wake = DispatchSemaphore(value: 0)
    private let terms = Atomic<Int>(0)

    /// - Parameters:
    ///   - holder: how this process names itself in the terms (default: its replica name, else host and pid).
    ///   - work: runs while this process owns the singleton; cancelled when it stops owning it.
    public init(
        database: Database, name: String, holder: String? = nil, checkEvery: Duration = .seconds(1),
        work: @escaping @Sendable () async -> Void
    ) {
        self.database = database
        self.name = name
        self.holder = holder ?? Self.processName
        self.checkEvery = checkEvery
        self.work = work
    }

    /// This process in ownership records: `CROUPIER_REPLICA` if set, else host:pid.
    public static var processName: String {
        ProcessInfo.processInfo.environment["CROUPIER_REPLICA"].map { "\($0)/\(getpid())" }
            ?? "\(ProcessInfo.processInfo.hostName)/\(getpid())"
    }

    /// Whether this process runs the work now.
    public var isOwner: Bool { state.withLock { $0.running != nil } }

    /// How many times this process took ownership.
    public var termsTaken: Int { terms.load(ordering: .relaxed) }

    public func start() {
        guard let url = database.postgresURL else {
            state.withLock { s in
                guard !s.stopped, s.running == nil else { return }
                s.running = Task { await work() }
            }
            terms.add(1, ordering: .relaxed)
            return
        }
        let begin = state.withLock { s -> Bool in
            guard !s.stopped, !s.thread else { return false }
            s.thread = true
            return true
        }
        guard begin else { return }
        let thread = Thread { [self] in contend(url: url) }
        thread.name = "singleton \(name)"
        thread.start()
    }

    /// Stops the work and gives up ownership (the lock connection closes).
    public func stop() {
        let running = state.withLock { s -> Task<Void, Never>? in
            s.stopped = true
            defer { s.running = nil }
            return s.running
        }
        running?.cancel()
        wake.signal()
    }

    /// The advisory lock's two keys: Croupier's class, and the name's digest.
    var lockKeys: (Int32, Int32) { (0x6372_6f75, PGTransactions.digest(name)) }

    /// The lock thread: connect, try the lock, run the work while it holds, until stopped.
    private func contend(url: String) {
        var connection: PGConnection?
        var owning = false
        let (classKey, objectKey) = lockKeys
        while !state.withLock({ $0.stopped }) {
            do {
                if connection == nil || connection?.isBroken == true {
                    connection = nil
                    connection = try PGConnection(url: url)
                }
                guard let c = connection else { continue }
                if owning {
                    _ = try c.queryFirst("SELECT 1", [], { _ in true })
                } else if try c.queryFirst("SELECT pg_try_advisory_lock(\(classKey), \(objectKey))::int", [], { $0.bool(0) }) == true {
                    owning = true
                    try record(c)
                    terms.add(1, ordering: .relaxed)
                    state.withLock { s in
                        if !s.stopped { s.running = Task { [work] in await work() } }
                    }
                }
            } catch {
                // The lock connection failed: whatever this process held, it may hold no longer.
                if owning { loseOwnership() }
                owning = false
                connection = nil
            }
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(checkEvery.components.seconds) * 1_000_000_000
                + Int(checkEvery.components.attoseconds / 1_000_000_000)))
        }
        connection = nil  // PQfinish: the session ends and the lock with it
        state.withLock { $0.thread = false }
    }

    private func loseOwnership() {
        state.withLock { s -> Task<Void, Never>? in
            defer { s.running = nil }
            return s.running
        }?.cancel()
    }

    /// Appends this term to `croupier_singleton_terms` (made on first use).
    private func record(_ c: PGConnection) throws {
        try c.executeScript("""
            CREATE TABLE IF NOT EXISTS croupier_singleton_terms (
                term BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL, holder TEXT NOT NULL,
                acquired_at TIMESTAMPTZ NOT NULL DEFAULT now())
            """)
        try c.execute("INSERT INTO croupier_singleton_terms (name, holder) VALUES ($1, $2)", [name, holder])
    }
}
