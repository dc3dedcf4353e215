import Foundation
import Storage
import Synchronization
import Wire

/// Runs cleanup operations: a few worker tasks take operation ids from a
/// queue (filled by CleanupGameTables and, at start, by every operation a
/// crash left unfinished).
///
/// Guarantees:
/// - one execution per operation at a time, across replicas: a runner takes
///   the operation's lease in the database before it begins and renews it
///   while checking batches; a second delivery of the same id (here or in
///   another replica) is skipped while the lease is live; a runner that
///   died leaves a lease that runs out, and the operation is run again
///   (`orphanedOperationIDs`, swept by GamesRole's singleton);
/// - all or nothing per request (CleanupApply.swift): batches of 100 are
///   checked one by one with the pause between them (holding no lock), then
///   the whole request becomes visible in one transaction, or none of it;
/// - a crash mid-operation checks again from the first batch (checking
///   changes nothing); a crash during the apply rolls it back whole.
public final class CleanupWorker: Sendable {
    let store: GamesCleanupStore
    let batchSize: Int
    let pause: Duration
    let log: @Sendable (String) -> Void
    /// Operations committed, timed from their start in this runner.
    let timed: DurationHistogram
    private let running = Mutex<[String: (checked: Int, batches: Int)]>([:])
    /// Ids waiting in `queue` (a sweep finds them again; they wait once).
    private let queued = Mutex<Set<String>>([])
    private let queue: AsyncStream<String>
    private let input: AsyncStream<String>.Continuation
    private let workers = Mutex<[Task<Void, Never>]>([])

    /// This process as an operation's runner, and how long its lease lasts unrenewed.
    let runner = Singleton.processName + "/" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    let leaseMillis: Int64

    struct LeaseLost: Error {}

    public init(store: GamesCleanupStore, batchSize: Int = 100, pause: Duration = .milliseconds(500), leaseMillis: Int64 = 30_000,
                timed: DurationHistogram = DurationHistogram(), log: @escaping @Sendable (String) -> Void) {
        self.timed = timed
        self.store = store
        self.leaseMillis = leaseMillis
        self.batchSize = batchSize
        self.pause = pause
        self.log = log
        (queue, input) = AsyncStream.makeStream(of: String.self)
    }

    /// Starts `count` workers and re-queues every unfinished operation.
    public func start(count: Int = 4) async throws {
        let queue = self.queue
        workers.withLock { w in
            for _ in 0..<count {
                w.append(Task { [self] in
                    for await id in queue {
                        _ = queued.withLock { $0.remove(id) }
                        await self.execute(id)
                    }
                })
            }
        }
        for id in try await store.unfinishedOperationIDs() { enqueue(id) }
    }

    public func stop() {
        input.finish()
        workers.withLock { $0.forEach { $0.cancel() } }
    }

    /// Queues an operation to run here, unless it already waits in this queue.
    public func enqueue(_ operationID: String) {
        guard queued.withLock({ $0.insert(operationID).inserted }) else { return }
        input.yield(operationID)
    }

    /// Batches checked so far and how many, while the operation runs here.
    public func progress(of operationID: String) -> (checked: Int, batches: Int)? {
        running.withLock { $0[operationID] }
    }

    /// Runs one operation to DEFERRED or FAILED. Returns false when another
    /// execution of the same operation holds its lock (this delivery is skipped).
    @discardableResult
    public func execute(_ operationID: String) async -> Bool {
        // Under the call that made the operation (kept with it): its correlation id and trace.
        let request = (try? await store.request(of: operationID)) ?? RequestContext()
        return await request.run { await executeTraced(operationID) }
    }

    private func executeTraced(_ operationID: String) async -> Bool {
        guard running.withLock({ r in
            guard r[operationID] == nil else { return false }
            r[operationID] = (0, 0)
            return true
        }) else {
            log(GamesLog.line("cleanup_operation_skipped", [("operation_id", operationID), ("reason", "already running")]))
            return false
        }
        defer { _ = running.withLock { $0.removeValue(forKey: operationID) } }
        var current: CleanupOperation?
        do {
            // Nil: final already, or another runner (another replica) holds its lease.
            guard let op = try await store.begin(operationID, runner: runner, leaseMillis: leaseMillis) else { return true }
            var renewed = ContinuousClock.now
            let began = renewed
            current = op
            let missing = Set(op.missingIDs)
            let present = op.requestedIDs.filter { !missing.contains($0) }
            let batches = stride(from: 0, to: present.count, by: batchSize).map { Array(present[$0..<min($0 + batchSize, present.count)]) }
            for (index, batch) in batches.enumerated() {
                if index > 0, pause > .zero { try await Task.sleep(for: pause) }
                if ContinuousClock.now - renewed > .milliseconds(leaseMillis / 3) {
                    guard try await store.renew(operationID, runner: runner, leaseMillis: leaseMillis) else { throw LeaseLost() }
                    renewed = .now
                }
                try await store.checkBatch(batch)
                running.withLock { $0[operationID] = (index + 1, batches.count) }
            }
            try await store.commit(op, ids: present)
            timed.observe(since: began)
            log(GamesLog.line("cleanup_operation_committed", [
                ("operation_id", operationID), ("run_id", op.runID), ("action", op.action.rawValue), ("tables", String(present.count)),
            ]))
        } catch let failure as RowFailure {
            guard let op = current else { return true }
            do {
                try await store.fail(op, reason: failure.description)
                log(GamesLog.line("cleanup_operation_failed", [
                    ("operation_id", operationID), ("request_id", op.requestID), ("run_id", op.runID), ("reason", failure.description),
                    ("principal", op.actor.principal),
                ]))
            } catch {
                log(GamesLog.line("cleanup_operation_error", [("operation_id", operationID), ("error", "\(error)")]))
            }
        } catch is CancellationError {
            // Stopping: the operation stays IN_PROGRESS and resumes at the next start.
        } catch is LeaseLost {
            log(GamesLog.line("cleanup_operation_skipped", [("operation_id", operationID), ("reason", "its lease passed to another runner")]))
        } catch {
            log(GamesLog.line("cleanup_operation_error", [
                ("operation_id", operationID), ("error", "\(error)"), ("next", "resumes at the next start"),
            ]))
        }
        return true
    }
}
