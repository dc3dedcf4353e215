import Storage
import Synchronization
import Wire

/// The RGS process: its database, the run driver and the outbox sender
/// (a Wire client of Games), and the RgsCleanup service.
public final class RgsRole: Sendable {
    public let database: Database
    public let estate: EstateStore
    public let runs: CleanupRunStore
    public let runner: CleanupRunner
    public let sender: SliceSender
    public let watcher: OutcomeWatcher
    let log: @Sendable (String) -> Void
    public let metrics = GameTablesMetrics()
    private let chain = Mutex<Singleton?>(nil)

    /// - Parameter games: a channel to the Games process's GamesCleanup service.
    public init(path: String, games: any RPCChannel, clock: any StorageClock = SystemClock(),
                options: Database.Options = Database.Options(), log: @escaping @Sendable (String) -> Void) throws {
        self.log = log
        database = try Database(path: path, owner: "rgs", migrations: RgsSchema.migrations, options: options)
        estate = EstateStore(database: database)
        runs = CleanupRunStore(database: database, clock: clock)
        runner = CleanupRunner(runs: runs, planned: metrics.planDuration, log: log)
        sender = SliceSender(runs: runs, games: games, log: log)
        watcher = OutcomeWatcher(runs: runs, games: games, log: log)
    }

    public var services: [any RPCService] {
        let (metrics, database) = (self.metrics, self.database)
        return [RgsCleanupAPI(estate: estate, runs: runs, log: log), MetricsService { try await metrics.renderRgs(database: database) }]
    }

    /// Resumes every unfinished run, starts delivering the outbox and
    /// watching the operations Games accepted.
    /// They are one singleton ("rgs.chain"): on a shared PostgreSQL database
    /// only one process drives runs and delivers slices at a time.
    public func start() async throws {
        let (runner, sender, watcher) = (runner, sender, watcher)
        let singleton = Singleton(database: database, name: "rgs.chain") {
            sender.start()
            watcher.start()
            await runner.run()
            sender.stop()
            watcher.stop()
        }
        chain.withLock { $0 = singleton }
        singleton.start()
    }

    public func stop() {
        chain.withLock { $0?.stop() }
        sender.stop()
        watcher.stop()
        database.close()
    }

    public static var migrations: [Migration] { RgsSchema.migrations }
}
