import Storage
import Synchronization
import Wire

/// The Games process: its database, the cleanup worker, the runtime
/// consumer and the integration-message cleaner, and the two services.
public final class GamesRole: Sendable {
    public struct Settings: Sendable {
        /// Pause between batches of 100 (seed: 0.5 s); it holds no database lock.
        public var batchPause: Duration = .milliseconds(500)
        public var workers = 4
        /// Integration messages older than this are removed (never a DEFERRED operation's).
        public var messageRetention: Duration = .seconds(7 * 86_400)
        public var cleanerInterval: Duration = .seconds(3_600)
        /// Runtime events the consumer applies per transaction.
        public var runtimeBatchSize = 512
        public var databaseOptions = Database.Options()
        public init() {}
    }

    public let database: Database
    public let cleanup: GamesCleanupStore
    public let worker: CleanupWorker
    public let runtime: RuntimeStore
    public let consumer: RuntimeConsumer
    let settings: Settings
    let clock: any StorageClock
    public let metrics = GameTablesMetrics()
    /// The runtime consumer and the cleaner: one process at a time runs them.
    private let background = Mutex<Singleton?>(nil)

    public init(path: String, settings: Settings = Settings(), clock: any StorageClock = SystemClock(),
                evaluator: any CapabilityEvaluator = StandingsEvaluator(), log: @escaping @Sendable (String) -> Void) throws {
        database = try Database(path: path, owner: "games", migrations: GamesSchema.migrations, options: settings.databaseOptions)
        cleanup = GamesCleanupStore(database: database, clock: clock)
        worker = CleanupWorker(store: cleanup, pause: settings.batchPause, timed: metrics.operationDuration, log: log)
        runtime = RuntimeStore(database: database, clock: clock)
        consumer = RuntimeConsumer(store: runtime, evaluator: evaluator, batchSize: settings.runtimeBatchSize, log: log)
        self.settings = settings
        self.clock = clock
    }

    public var services: [any RPCService] {
        let (metrics, database, runtime) = (self.metrics, self.database, self.runtime)
        return [
            GamesCleanupAPI(store: cleanup, worker: worker, retention: MessageRetention(retention: settings.messageRetention)),
            GameRuntimeAPI(store: runtime), MetricsService { try await metrics.renderGames(database: database, runtime: runtime) },
        ]
    }

    /// Starts the workers (resuming unfinished operations), the consumer and the cleaner.
    public func start() async throws {
        try await worker.start(count: settings.workers)
        let (consumer, worker, store, clock, interval) = (consumer, worker, cleanup, clock, settings.cleanerInterval)
        let retention = MessageRetention(retention: settings.messageRetention)
        // Singletons: the consumer owns the runtime offset, one cleaner is
        // enough, and one sweeper re-runs operations whose runner died
        // (in any replica: its lease ran out).
        let singleton = Singleton(database: database, name: "games.background") {
            consumer.start()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        _ = try? await store.cleanMessages(receivedBefore: retention.cutoff(nowMillis: clock.nowMillis()))
                        try? await Task.sleep(for: interval)
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        for id in (try? await store.orphanedOperationIDs()) ?? [] { worker.enqueue(id) }
                        try? await Task.sleep(for: .seconds(2))
                    }
                }
            }
            consumer.stop()
        }
        background.withLock { $0 = singleton }
        singleton.start()
    }

    public func stop() {
        worker.stop()
        background.withLock { $0?.stop() }
        consumer.stop()
        database.close()
    }

    public static var migrations: [Migration] { GamesSchema.migrations }
}
