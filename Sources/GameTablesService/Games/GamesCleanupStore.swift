import Foundation
import Storage
import Wire

/// One of the Games side's tables.
public struct GameTableRow: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var currency: String
    public var active: Bool
    public var archivedAtMillis: Int64?
    public var inPlay: Bool
    /// The ARCHIVE operation that archived this table to keep it (it had traffic); a purge never deletes it.
    public var keptBy: String?

    public init(id: Int64, name: String, currency: String, active: Bool, archivedAtMillis: Int64? = nil, inPlay: Bool = false) {
        self.id = id
        self.name = name
        self.currency = currency
        self.active = active
        self.archivedAtMillis = archivedAtMillis
        self.inPlay = inPlay
    }

    /// The audited fields, as a version row's before/after JSON.
    var json: String {
        var w = JSONLine()
        w.number("id", id)
        w.field("name", name)
        w.field("currency", currency)
        w.bool("active", active)
        if let archivedAtMillis { w.number("archived_at_ms", archivedAtMillis) } else { w.raw("archived_at_ms", "null") }
        w.bool("in_play", inPlay)
        return w.finish()
    }
}

/// Why one row of a cleanup could not change; the whole request fails and nothing of it becomes visible.
struct RowFailure: Error, CustomStringConvertible {
    let description: String
}

/// Every SQL statement of the Games cleanup side. Each method is one
/// transaction. Applying operations (CleanupApply.swift), purging
/// (CleanupPurge.swift) and the operator's lists (OperationViews.swift)
/// extend it.
public struct GamesCleanupStore: Sendable {
    let database: Database
    let clock: any StorageClock

    /// Raised, per operation, after the commit that finished or failed it.
    let settled = KeyedSignals()

    static let tableColumns = "id, name, currency, active, archived_at, in_play, kept_by"
    static func table(_ r: Row) -> GameTableRow {
        var row = GameTableRow(
            id: r.int64(0), name: r.string(1), currency: r.string(2), active: r.bool(3), archivedAtMillis: r.optionalInt64(4), inPlay: r.bool(5))
        row.keptBy = r.optionalString(6)
        return row
    }

    static func table(_ tx: Transaction, _ id: Int64) throws -> GameTableRow? {
        try tx.queryFirst("SELECT \(tableColumns) FROM game_tables WHERE id = ?", [id], table)
    }

    /// The columns `operation` reads; a query that selects more puts them after these `operationColumnCount`.
    static let operationColumns = """
        operation_id, request_id, action, status, archived_at, requested_ids, affected_ids, missing_ids, failure, \
        purge_failures, purged, created_at, updated_at, run_id, principal, correlation_id, traceparent
        """
    static func operation(_ r: Row) -> CleanupOperation {
        CleanupOperation(
            operationID: r.string(0), requestID: r.string(1), action: .init(rawValue: r.string(2)) ?? .archive,
            status: .init(rawValue: r.string(3)) ?? .failed, archivedAtMillis: r.int64(4), requestedIDs: IDList.decode(r.string(5)),
            affectedIDs: IDList.decode(r.string(6)), missingIDs: IDList.decode(r.string(7)),
            failure: r.string(8), purgeFailures: IDList.decodeTexts(r.string(9)), purged: r.int(10),
            createdAtMillis: r.int64(11), updatedAtMillis: r.int64(12), runID: r.string(13),
            actor: ChangeActor(principal: r.string(14), correlationID: r.string(15), traceparent: r.string(16)))
    }
    static let operationColumnCount = 17

    /// The call that made operation `id`: its correlation id and trace (empty: none kept, or no such operation).
    func request(of id: String) async throws -> RequestContext {
        try await database.read { db in
            try db.queryFirst("SELECT correlation_id, traceparent FROM operations WHERE operation_id = ?", [id]) {
                RequestContext(correlationID: $0.string(0), traceparent: $0.string(1))
            }
        } ?? RequestContext()
    }

    // MARK: Tables

    public func load(_ rows: [GameTableRow]) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            for t in rows {
                try tx.execute(
                    """
                    INSERT INTO game_tables (id, name, currency, active, archived_at, in_play, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET name = excluded.name, currency = excluded.currency, active = excluded.active,
                        archived_at = excluded.archived_at, in_play = excluded.in_play, updated_at = excluded.updated_at,
                        kept_by = CASE WHEN excluded.active <> 0 THEN NULL ELSE game_tables.kept_by END
                    """, [t.id, t.name, t.currency, t.active, t.archivedAtMillis, t.inPlay, now])
            }
        }
    }

    public func tables(_ ids: [Int64]) async throws -> [GameTableRow] {
        try await database.read { db in
            try ids.compactMap { id in try db.queryFirst("SELECT \(Self.tableColumns) FROM game_tables WHERE id = ?", [id], Self.table) }
        }
    }

    // MARK: Operations

    /// Stores the integration message and a RECEIVED operation, or returns
    /// the operation an earlier request with this id created (`isNew` false).
    public func receive(
        requestID: String, action: CleanupOperation.Action, ids: [Int64], archivedAtMillis: Int64, body: [UInt8],
        runID: String = "", actor: ChangeActor = .service
    ) async throws -> (CleanupOperation, isNew: Bool) {
        let now = clock.nowMillis()
        return try await database.write { tx in
            if let existing = try tx.queryFirst(
                "SELECT \(Self.operationColumns) FROM operations WHERE request_id = ?", [requestID], Self.operation)
            {
                return (existing, false)
            }
            let id = "op_" + UUID().uuidString.lowercased()
            try tx.execute(
                """
                INSERT INTO operations (operation_id, request_id, action, status, archived_at, requested_ids, created_at, updated_at,
                    run_id, principal, correlation_id, traceparent, seq)
                VALUES (?, ?, ?, 'RECEIVED', ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM operations))
                """, [id, requestID, action.rawValue, archivedAtMillis, IDList.encode(ids), now, now, runID, actor.principal,
                      actor.correlationID, actor.traceparent])
            try tx.execute(
                "INSERT INTO integration_messages (request_id, operation_id, body, archived_at, received_at) VALUES (?, ?, ?, ?, ?)",
                [requestID, id, body, archivedAtMillis, now])
            return (try Self.operation(tx, id)!, true)
        }
    }

    static func operation(_ tx: Transaction, _ id: String) throws -> CleanupOperation? {
        try tx.queryFirst("SELECT \(operationColumns) FROM operations WHERE operation_id = ?", [id], operation)
    }

    public func operation(_ id: String) async throws -> CleanupOperation? {
        try await database.read { db in
            try db.queryFirst("SELECT \(Self.operationColumns) FROM operations WHERE operation_id = ?", [id], Self.operation)
        }
    }

    /// Operations a worker still owes: RECEIVED or IN_PROGRESS (after a restart, too).
    /// Unfinished operations no runner holds a live lease on (their runner died, or none began).
    func orphanedOperationIDs() async throws -> [String] {
        let now = clock.nowMillis()
        return try await database.read { db in
            try db.query(
                "SELECT operation_id FROM operations WHERE status IN ('RECEIVED', 'IN_PROGRESS') AND lease_until <= ? ORDER BY seq",
                [now], { $0.string(0) })
        }
    }

    public func unfinishedOperationIDs() async throws -> [String] {
        try await database.read { db in
            try db.query(
                "SELECT operation_id FROM operations WHERE status IN ('RECEIVED', 'IN_PROGRESS') ORDER BY created_at", [], { $0.string(0) })
        }
    }

    /// Deletes the integration messages `MessageRetention` lets go: received
    /// before `cutoff` and not held by their operation (DEFERRED, still
    /// needed to purge, or not finished yet). Returns how many went.
    @discardableResult
    public func cleanMessages(receivedBefore cutoff: Int64) async throws -> Int {
        try await database.write { tx in
            try tx.execute(
                """
                DELETE FROM integration_messages WHERE received_at < ? AND operation_id NOT IN
                    (SELECT operation_id FROM operations WHERE status IN (\(MessageRetention.holdingStatusList)))
                """, [cutoff])
        }
    }

    public func messageCount() async throws -> Int {
        try await database.read { db in try db.queryFirst("SELECT count(*) FROM integration_messages") { $0.int(0) } ?? 0 }
    }
}
