import Storage
import Wire

/// One slice owed to Games, or awaiting its operation's outcome.
public struct CleanupSlice: Sendable, Equatable {
    public var requestID: String
    public var runID: String
    public var serverID: String
    public var action: CleanupOperation.Action
    public var boIDs: [Int64]
    public var archivedAtMillis: Int64
    /// Whoever kicked off the run: the Games operation and its version rows name them.
    public var actor: ChangeActor
    /// Set once Games accepted the slice.
    public var operationID: String
}

/// What Games made of a slice's operation, once final.
struct GamesOutcome: Sendable {
    var status: CleanupOperation.Status
    var affectedIDs: [Int64]
    var missingIDs: [Int64]
    var failure: String
}

/// The slice outbox: delivered until Games accepts each slice, then watched
/// until its operation is final, then settled on RGS in one transaction.
extension CleanupRunStore {
    static let sliceColumns = """
        s.request_id, s.run_id, s.server_id, s.action, s.bo_ids, s.archived_at, r.principal, r.correlation_id, s.operation_id, r.traceparent
        """
    static func slice(_ r: Row) -> CleanupSlice {
        CleanupSlice(
            requestID: r.string(0), runID: r.string(1), serverID: r.string(2), action: .init(rawValue: r.string(3)) ?? .archive,
            boIDs: IDList.decode(r.string(4)), archivedAtMillis: r.int64(5),
            actor: ChangeActor(principal: r.string(6).isEmpty ? "rgs" : r.string(6), correlationID: r.string(7), traceparent: r.string(9)),
            operationID: r.string(8))
    }

    /// Slices Games has not accepted yet.
    public func pendingSlices(limit: Int) async throws -> [CleanupSlice] {
        try await database.read { db in
            try db.query(
                """
                SELECT \(Self.sliceColumns) FROM cleanup_slices s JOIN cleanup_runs r ON r.run_id = s.run_id
                WHERE s.state = 'PENDING' ORDER BY s.request_id LIMIT ?
                """, [limit], Self.slice)
        }
    }

    /// Slices Games accepted whose operation is not final yet.
    public func awaitingOutcome(limit: Int) async throws -> [CleanupSlice] {
        try await database.read { db in
            try db.query(
                """
                SELECT \(Self.sliceColumns) FROM cleanup_slices s JOIN cleanup_runs r ON r.run_id = s.run_id
                WHERE s.state = 'ACKNOWLEDGED' AND s.outcome = 'AWAITING' ORDER BY s.request_id LIMIT ?
                """, [limit], Self.slice)
        }
    }

    /// Games accepted the slice as `operationID`; its outcome is watched from now on.
    func acknowledge(_ slice: CleanupSlice, operationID: String, status: CleanupOperation.Status) async throws {
        let now = clock.nowMillis()
        let signal = slicesAccepted
        try await database.write { tx in
            try tx.execute(
                """
                UPDATE cleanup_slices SET state = 'ACKNOWLEDGED', operation_id = ?, games_status = ?, attempts = attempts + 1,
                    acknowledged_at = ?, last_error = ''
                WHERE request_id = ? AND state = 'PENDING'
                """, [operationID, status.rawValue, now, slice.requestID])
            tx.wake(signal)
        }
    }

    /// A delivery or watch attempt failed and will be retried.
    func recordAttempt(_ slice: CleanupSlice, error: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_slices SET attempts = attempts + 1, last_error = ? WHERE request_id = ?", [error, slice.requestID])
        }
    }

    /// Games refused the slice for good: nothing of it changes on either side.
    func refuse(_ slice: CleanupSlice, error: String) async throws {
        try await database.write { tx in
            try tx.execute(
                "UPDATE cleanup_slices SET state = 'FAILED', attempts = attempts + 1, failure = ? WHERE request_id = ?",
                [error, slice.requestID])
            try Self.settleJob(tx, runID: slice.runID, serverID: slice.serverID)
        }
    }

    /// Records a final Games outcome and makes RGS agree with it, in one
    /// transaction: for a DEFERRED (or PROCESSED) operation, the slice's
    /// tables whose id Games archived are deleted or archived here too;
    /// tables whose id Games does not have, and every table of a FAILED
    /// operation, stay as they were. Returns false when already settled.
    @discardableResult
    func settle(_ slice: CleanupSlice, _ outcome: GamesOutcome) async throws -> Bool {
        try await database.write { tx in
            guard let tables = try tx.queryFirst(
                "SELECT tables FROM cleanup_slices WHERE request_id = ? AND outcome = 'AWAITING'", [slice.requestID], { $0.string(0) })
            else { return false }
            if outcome.status == .failed {
                try tx.execute(
                    "UPDATE cleanup_slices SET games_status = 'FAILED', outcome = 'FAILED', failure = ? WHERE request_id = ?",
                    [outcome.failure, slice.requestID])
            } else {
                let applied = Set(outcome.affectedIDs)
                let settled = SliceTables.decode(tables).filter { applied.contains($0.boID) }
                // A table whose back-office id changed since it was planned is not this slice's any more.
                for chunk in stride(from: 0, to: settled.count, by: 500).map({ settled[$0..<min($0 + 500, settled.count)] }) {
                    let list = SQLInList(chunk.map(\.tableID), step: 500)
                    let ids = SQLInList(chunk.map(\.boID), step: 500)
                    if slice.action == .delete {
                        try tx.execute(
                            "DELETE FROM rgs_tables WHERE active = 1 AND table_id IN \(list.sql) AND bo_id IN \(ids.sql)",
                            list.arguments + ids.arguments)
                    } else {
                        try tx.execute(
                            "UPDATE rgs_tables SET active = 0, archived_at = ? WHERE active = 1 AND table_id IN \(list.sql) AND bo_id IN \(ids.sql)",
                            [slice.archivedAtMillis] + list.arguments + ids.arguments)
                    }
                }
                try tx.execute(
                    "UPDATE cleanup_slices SET games_status = ?, outcome = 'APPLIED', missing_ids = ? WHERE request_id = ?",
                    [outcome.status.rawValue, IDList.encode(outcome.missingIDs), slice.requestID])
            }
            try Self.settleJob(tx, runID: slice.runID, serverID: slice.serverID)
            return true
        }
    }

    /// Games' status of an operation that is not final yet.
    func noteStatus(_ slice: CleanupSlice, _ status: CleanupOperation.Status) async throws {
        try await database.write { tx in
            try tx.execute(
                """
                UPDATE cleanup_slices SET games_status = ?, last_error = ''
                WHERE request_id = ? AND outcome = 'AWAITING' AND (games_status <> ? OR last_error <> '')
                """, [status.rawValue, slice.requestID, status.rawValue])
        }
    }

    /// Once no slice of the job is owed or awaited: DONE when both sides
    /// agree on every slice, else FAILED with every reason.
    static func settleJob(_ tx: Transaction, runID: String, serverID: String) throws {
        let slices = try tx.query(
            """
            SELECT request_id, state, outcome, operation_id, failure, missing_ids FROM cleanup_slices
            WHERE run_id = ? AND server_id = ? ORDER BY request_id
            """, [runID, serverID]) { ($0.string(0), $0.string(1), $0.string(2), $0.string(3), $0.string(4), $0.string(5)) }
        var reasons: [String] = []
        for (request, state, outcome, operation, failure, missing) in slices {
            if state == "PENDING" || (state == "ACKNOWLEDGED" && outcome == "AWAITING") { return }
            if state == "FAILED" {
                reasons.append("Games refused slice \(request): \(failure); nothing of it changed")
            } else if outcome == "FAILED" {
                reasons.append("Games failed operation \(operation) (slice \(request)): \(failure); its tables were left as they were on both sides")
            } else if !missing.isEmpty {
                let ids = IDList.decode(missing)
                let shown = ids.prefix(10).map(String.init).joined(separator: ", ") + (ids.count > 10 ? " …" : "")
                reasons.append("Games has no table for \(ids.count) id(s) of slice \(request) (\(shown)); their RGS tables were left as they were")
            }
        }
        try tx.execute(
            "UPDATE cleanup_jobs SET state = ?, failure = ? WHERE run_id = ? AND server_id = ? AND state = 'SENDING'",
            [reasons.isEmpty ? "DONE" : "FAILED", reasons.joined(separator: "; "), runID, serverID])
    }
}
