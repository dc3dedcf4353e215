import Storage
import Wire

/// Phase 2 of seed 003: after verification, a DELETE operation's tables are
/// hard-deleted. Only DELETE operations: an ARCHIVE operation's tables had
/// traffic and are archived to be kept, so purging one is refused, and a
/// table some ARCHIVE operation keeps (`kept_by`) is never deleted, even
/// when a DELETE operation also names it.
extension GamesCleanupStore {
    public struct RunPurge: Sendable {
        public var operations: [CleanupOperation]
        public var purged: Int
        public var archiveOperationsKept: Int
    }

    /// Purges one DEFERRED DELETE operation (a PROCESSED one is returned as it is).
    public func purge(_ id: String, actor: ChangeActor = .service) async throws -> CleanupOperation {
        let now = clock.nowMillis()
        return try await database.write { tx in try Self.purge(tx, id, actor: actor, now: now).operation }
    }

    /// Purges every DEFERRED DELETE operation of a cleanup run, each in its
    /// own transaction; the run's other DELETE operations are reported as they are.
    public func purge(runID: String, actor: ChangeActor = .service) async throws -> RunPurge {
        guard !runID.isEmpty else { throw RPCError(.invalidArgument, "run_id is required") }
        let operations = try await database.read { db in
            try db.query("SELECT operation_id, action FROM operations WHERE run_id = ? ORDER BY seq", [runID]) {
                ($0.string(0), CleanupOperation.Action(rawValue: $0.string(1)))
            }
        }
        guard !operations.isEmpty else { throw RPCError(.notFound, "no operations belong to cleanup run \(runID)") }
        var result = RunPurge(operations: [], purged: 0, archiveOperationsKept: 0)
        for (id, action) in operations {
            guard action == .delete else {
                result.archiveOperationsKept += 1
                continue
            }
            let now = clock.nowMillis()
            let (op, purged) = try await database.write { tx in
                guard let op = try Self.operation(tx, id) else { throw RPCError(.notFound, "operation \(id) does not exist") }
                return op.status == .deferred ? try Self.purge(tx, id, actor: actor, now: now) : (op, 0)
            }
            result.operations.append(op)
            result.purged += purged
        }
        return result
    }

    /// Hard-deletes the operation's tables, a `destroy` version row each. A
    /// row that cannot go (gone, in play, active again, kept by an ARCHIVE
    /// operation) is reported and skipped; the operation becomes PROCESSED.
    static func purge(_ tx: Transaction, _ id: String, actor: ChangeActor, now: Int64) throws -> (operation: CleanupOperation, purged: Int) {
        guard let op = try operation(tx, id) else { throw RPCError(.notFound, "operation \(id) does not exist") }
        guard op.action == .delete else {
            throw RPCError(
                .failedPrecondition,
                "operation \(id) is an ARCHIVE operation: its tables had traffic and are archived to be kept; only DELETE operations are purged")
        }
        if op.status == .processed { return (op, 0) }
        guard op.status == .deferred else {
            throw RPCError(.failedPrecondition, "operation \(id) is \(op.status.rawValue); only a DEFERRED operation can be purged")
        }
        var failures: [String] = []
        var purged = 0
        for tableID in op.affectedIDs {
            guard let row = try table(tx, tableID) else {
                failures.append("table \(tableID): not found")
                continue
            }
            if row.inPlay { failures.append("table \(tableID): in play"); continue }
            if row.active { failures.append("table \(tableID): active again, not purged"); continue }
            if let keeper = row.keptBy {
                failures.append("table \(tableID): kept, archived with traffic by operation \(keeper)")
                continue
            }
            try tx.execute("DELETE FROM game_tables WHERE id = ?", [tableID])
            try version(tx, tableID, "destroy", id, actor, row.json, "{}", now)
            purged += 1
        }
        try tx.execute(
            "UPDATE operations SET status = 'PROCESSED', purged = ?, purge_failures = ?, updated_at = ? WHERE operation_id = ?",
            [purged, IDList.encode(failures), now, id])
        return (try operation(tx, id)!, purged)
    }
}
