import Storage
import Synchronization
import Wire

/// The staging process: its database, the import merges, the diff worker,
/// deploys, and the StagingService and DiffQueue services.
public final class StagingRole: Sendable {
    public struct Settings: Sendable {
        /// Import and diff lock lease; heartbeats renew it every third.
        public var leaseMillis: Int64 = 30_000
        /// Diff queue visibility timeout (a crashed worker's request reappears after it).
        public var diffVisibilityMillis: Int64 = 30 * 60 * 1000
        public var maxConcurrentMerges = 2
        /// Least time between two merge-progress reports (lock progress and `lock-change` events).
        public var progressIntervalMillis = 500
        public var diffWorkers = 2
        /// Backoff base for a failed diff request (doubles per receive).
        public var diffRetryBaseMillis: Int64 = 1_000
        public var maxImageBytes = 5 * 1024 * 1024
        public var databaseOptions = Database.Options()
        public init() {}
    }

    public let database: Database
    public let settings: Settings
    let eventLog: EventLog
    let events: StagingEvents
    let locks: LockStore
    let leases: LeaseKeeper
    let imports: ImportStore
    let importer: Importer
    let manual: ManualChanges
    public let requests: DiffRequests
    let diffs: DiffStore
    let worker: DiffWorker
    let deployer: Deployer
    let log: @Sendable (String) -> Void
    public let metrics = StagingMetrics()
    /// On PostgreSQL: merging and recovery, run by one replica at a time.
    private let jobs = Mutex<Singleton?>(nil)

    public init(path: String, settings: Settings = Settings(), clock: any StorageClock = SystemClock(),
                log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.log = log
        database = try Database(path: path, owner: "staging", migrations: StagingSchema.migrations, options: settings.databaseOptions)
        eventLog = EventLog(database: database, clock: clock)
        events = StagingEvents(log: eventLog)
        locks = LockStore(database: database, events: events, clock: clock, leaseMillis: settings.leaseMillis)
        leases = LeaseKeeper(locks: locks)
        imports = ImportStore(database: database, locks: locks, clock: clock)
        importer = Importer(
            store: imports, leases: leases, maxConcurrent: settings.maxConcurrentMerges,
            progressInterval: .milliseconds(settings.progressIntervalMillis), merged: metrics.importDuration, log: log)
        requests = DiffRequests(queue: DurableQueue(
            database: database, configuration: DiffRequests.configuration(visibilityTimeoutMillis: settings.diffVisibilityMillis),
            clock: clock))
        manual = ManualChanges(database: database, events: events, requests: requests, clock: clock)
        diffs = DiffStore(database: database, events: events, locks: locks, clock: clock)
        worker = DiffWorker(
            requests: requests, diffs: diffs, locks: locks, leases: leases, concurrency: settings.diffWorkers,
            retryBaseMillis: settings.diffRetryBaseMillis, produced: metrics.diffDuration, log: log)
        deployer = Deployer(
            database: database, locks: locks, leases: leases, diffs: diffs, events: events, clock: clock, swapped: metrics.deployDuration)
    }

    public var services: [any RPCService] {
        let (metrics, queue, database) = (self.metrics, requests.queue, self.database)
        return [
            StagingAPI(role: self), DiffQueueAPI(requests: requests, database: database),
            MetricsService { try await metrics.render(queue: queue, database: database) },
        ]
    }

    /// Starts leases, merges (the importer reaches the DiffQueue through
    /// `diffQueue`, a Wire channel to this service) and the diff worker.
    ///
    /// On a SQLite file (this process's alone) whatever was unfinished was
    /// this process's: it is recovered at once and this process merges. On
    /// PostgreSQL, replicas share the database: merging and recovery are a
    /// `Singleton` ("staging.jobs"), and an unfinished upload or deploy is
    /// left to its holder until its lease runs out. Every replica serves
    /// calls, holds the leases of its own uploads and deploys, and runs diff
    /// workers (the DiffQueue hands each request to one of them).
    public func start(diffQueue: any RPCChannel) async throws {
        leases.start()
        worker.start()
        guard database.dialect == .postgres else {
            _ = try await deployer.recoverInterrupted()
            try await importer.start(diffQueue: diffQueue)
            return
        }
        let (importer, deployer, imports, log) = (self.importer, self.deployer, self.imports, self.log)
        let singleton = Singleton(database: database, name: "staging.jobs") {
            do {
                try await importer.start(diffQueue: diffQueue, abandonReceiving: false)
            } catch {
                log("staging jobs could not start: \(error)")
            }
            while !Task.isCancelled {
                do {
                    _ = try await deployer.recoverInterrupted(onlyOrphaned: true)
                    _ = try await imports.abandonOrphanedUploads()
                } catch {
                    log("staging recovery failed: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
            importer.stop()
        }
        jobs.withLock { $0 = singleton }
        singleton.start()
    }

    public func stop() {
        worker.stop()
        jobs.withLock { $0?.stop() }
        importer.stop()
        leases.stop()
        database.close()
    }

    public static var migrations: [Migration] { StagingSchema.migrations }
}
