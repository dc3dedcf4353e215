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

/// Why one row of a cleanup could not change; the whole request rolls back.
struct RowFailure: Error, CustomStringConvertible {
    let description: String
}

/// Every SQL statement of the Games cleanup side. Each method is one transaction.
public struct GamesCleanupStore: Sendable {
    let database: Database
    let clock: any StorageClock

    static let tableColumns = "id, name, currency, active, archived_at, in_play"
    static func table(_ r: Row) -> GameTableRow {
        GameTableRow(id: r.int64(0), name: r.string(1), currency: r.string(2), active: r.bool(3), archivedAtMillis: r.optionalInt64(4), inPlay: r.bool(5))
    }

    static let operationColumns = """
        operation_id, request_id, action, status, archived_at, requested_ids, affected_ids, missing_ids, next_batch, failure, \
        purge_failures, purged, created_at, updated_at
        """
    static func operation(_ r: Row) -> CleanupOperation {
        CleanupOperation(
            operationID: r.string(0), requestID: r.string(1), action: .init(rawValue: r.string(2)) ?? .archive,
            status: .init(rawValue: r.string(3)) ?? .failed, archivedAtMillis: r.int64(4), requestedIDs: IDList.decode(r.string(5)),
            affectedIDs: IDList.decode(r.string(6)), missingIDs: IDList.decode(r.string(7)), nextBatch: r.int(8),
            failure: r.string(9), purgeFailures: IDList.decodeTexts(r.string(10)), purged: r.int(11),
            createdAtMillis: r.int64(12), updatedAtMillis: r.int64(13))
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
                        archived_at = excluded.archived_at, in_play = excluded.in_play, updated_at = excluded.updated_at
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
        requestID: String, action: CleanupOperation.Action, ids: [Int64], archivedAtMillis: Int64, body: [UInt8]
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
                INSERT INTO operations (operation_id, request_id, action, status, archived_at, requested_ids, created_at, updated_at)
                VALUES (?, ?, ?, 'RECEIVED', ?, ?, ?, ?)
                """, [id, requestID, action.rawValue, archivedAtMillis, IDList.encode(ids), now, now])
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
    public func unfinishedOperationIDs() async throws -> [String] {
        try await database.read { db in
            try db.query(
                "SELECT operation_id FROM operations WHERE status IN ('RECEIVED', 'IN_PROGRESS') ORDER BY created_at", [], { $0.string(0) })
        }
    }

    /// Moves a RECEIVED or IN_PROGRESS operation to IN_PROGRESS, recording
    /// which requested ids have no table; nil when there is nothing to run.
    func begin(_ id: String) async throws -> CleanupOperation? {
        let now = clock.nowMillis()
        return try await database.write { tx in
            guard var op = try Self.operation(tx, id), op.status == .received || op.status == .inProgress else { return nil }
            if op.status == .received {
                var missing: [Int64] = []
                for tableID in op.requestedIDs
                where try tx.queryFirst("SELECT 1 FROM game_tables WHERE id = ?", [tableID], { _ in true }) == nil {
                    missing.append(tableID)
                }
                try tx.execute(
                    "UPDATE operations SET status = 'IN_PROGRESS', missing_ids = ?, updated_at = ? WHERE operation_id = ?",
                    [IDList.encode(missing), now, id])
                op.status = .inProgress
                op.missingIDs = missing
            }
            return op
        }
    }

    /// Archives one batch of an operation's tables in one transaction, with a
    /// version row per changed table; throws `RowFailure` (changing nothing)
    /// when a row cannot be archived. Re-running a batch after a crash finds
    /// its rows already archived and writes nothing twice.
    func archiveBatch(_ op: CleanupOperation, index: Int, ids: [Int64]) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            var changed: [Int64] = []
            for id in ids {
                guard let before = try tx.queryFirst("SELECT \(Self.tableColumns) FROM game_tables WHERE id = ?", [id], Self.table)
                else { continue }  // recorded as missing when the operation began
                if before.inPlay { throw RowFailure(description: "table \(id) is in play and cannot be archived") }
                if !before.active && before.archivedAtMillis == op.archivedAtMillis { changed.append(id); continue }
                var after = before
                after.active = false
                after.archivedAtMillis = op.archivedAtMillis
                try tx.execute(
                    "UPDATE game_tables SET active = 0, archived_at = ?, updated_at = ? WHERE id = ?", [op.archivedAtMillis, now, id])
                try Self.version(tx, id, "archive", op.operationID, before.json, after.json, now)
                changed.append(id)
            }
            try tx.execute(
                """
                UPDATE operations SET next_batch = ?, affected_ids = CASE WHEN affected_ids = '' THEN ? ELSE affected_ids || ',' || ? END,
                    updated_at = ? WHERE operation_id = ? AND next_batch = ?
                """, [index + 1, IDList.encode(changed), IDList.encode(changed), now, op.operationID, index])
        }
    }

    static func version(
        _ tx: Transaction, _ tableID: Int64, _ event: String, _ operationID: String, _ before: String, _ after: String, _ now: Int64
    ) throws {
        try tx.execute(
            """
            INSERT INTO versions (table_id, event, actor, operation_id, before_json, after_json, created_at)
            VALUES (?, ?, 'games-cleanup', ?, ?, ?, ?)
            """, [tableID, event, operationID, before, after, now])
    }

    /// All or nothing: restores every table an operation already archived
    /// (from its version rows, newest first), then marks it FAILED.
    func fail(_ op: CleanupOperation, reason: String) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            let archived = try tx.query(
                "SELECT table_id, before_json FROM versions WHERE operation_id = ? AND event = 'archive' ORDER BY version_id DESC",
                [op.operationID]) { ($0.int64(0), $0.string(1)) }
            for (tableID, beforeJSON) in archived {
                guard let current = try tx.queryFirst("SELECT \(Self.tableColumns) FROM game_tables WHERE id = ?", [tableID], Self.table),
                    let object = try? JSONSerialization.jsonObject(with: Data(beforeJSON.utf8)) as? [String: Any]
                else { continue }
                var restored = current
                restored.active = (object["active"] as? Bool) ?? true
                restored.archivedAtMillis = (object["archived_at_ms"] as? NSNumber)?.int64Value
                try tx.execute(
                    "UPDATE game_tables SET active = ?, archived_at = ?, updated_at = ? WHERE id = ?",
                    [restored.active, restored.archivedAtMillis, now, tableID])
                try Self.version(tx, tableID, "revert", op.operationID, current.json, restored.json, now)
            }
            try tx.execute(
                "UPDATE operations SET status = 'FAILED', failure = ?, affected_ids = '', updated_at = ? WHERE operation_id = ?",
                [reason, now, op.operationID])
        }
    }

    func finish(_ op: CleanupOperation) async throws {
        let now = clock.nowMillis()
        try await database.write { tx in
            try tx.execute(
                "UPDATE operations SET status = 'DEFERRED', updated_at = ? WHERE operation_id = ? AND status = 'IN_PROGRESS'",
                [now, op.operationID])
        }
    }

    /// Hard-deletes a DEFERRED operation's tables (those it archived), one
    /// version row each. A row that cannot go (gone, in play, active again)
    /// is reported and skipped; the operation then becomes PROCESSED.
    public func purge(_ id: String) async throws -> CleanupOperation {
        let now = clock.nowMillis()
        return try await database.write { tx in
            guard let op = try Self.operation(tx, id) else { throw RPCError(.notFound, "operation \(id) does not exist") }
            if op.status == .processed { return op }
            guard op.status == .deferred else {
                throw RPCError(.failedPrecondition, "operation \(id) is \(op.status.rawValue); only a DEFERRED operation can be purged")
            }
            var failures: [String] = []
            var purged = 0
            for tableID in op.affectedIDs {
                guard let row = try tx.queryFirst("SELECT \(Self.tableColumns) FROM game_tables WHERE id = ?", [tableID], Self.table) else {
                    failures.append("table \(tableID): not found")
                    continue
                }
                if row.inPlay { failures.append("table \(tableID): in play"); continue }
                if row.active { failures.append("table \(tableID): active again, not purged"); continue }
                try tx.execute("DELETE FROM game_tables WHERE id = ?", [tableID])
                try Self.version(tx, tableID, "destroy", id, row.json, "{}", now)
                purged += 1
            }
            try tx.execute(
                "UPDATE operations SET status = 'PROCESSED', purged = ?, purge_failures = ?, updated_at = ? WHERE operation_id = ?",
                [purged, IDList.encode(failures), now, id])
            return try Self.operation(tx, id)!
        }
    }

    /// Deletes integration messages received before `cutoff`, except those of
    /// DEFERRED operations (still needed to purge). Returns how many went.
    @discardableResult
    public func cleanMessages(receivedBefore cutoff: Int64) async throws -> Int {
        try await database.write { tx in
            try tx.execute(
                """
                DELETE FROM integration_messages WHERE received_at < ? AND operation_id NOT IN
                    (SELECT operation_id FROM operations WHERE status = 'DEFERRED')
                """, [cutoff])
        }
    }

    public func messageCount() async throws -> Int {
        try await database.read { db in try db.queryFirst("SELECT count(*) FROM integration_messages") { $0.int(0) } ?? 0 }
    }

    public func versions(tableID: Int64) async throws -> [Croupier_Gametables_V1_Version] {
        try await database.read { db in
            try db.query(
                """
                SELECT version_id, table_id, event, actor, operation_id, before_json, after_json, created_at
                FROM versions WHERE table_id = ? ORDER BY version_id
                """, [tableID]
            ) { r in
                Croupier_Gametables_V1_Version.with {
                    $0.versionId = r.int64(0)
                    $0.tableId = r.int64(1)
                    $0.event = r.string(2)
                    $0.actor = r.string(3)
                    $0.operationId = r.optionalString(4) ?? ""
                    $0.beforeJson = r.string(5)
                    $0.afterJson = r.string(6)
                    $0.createdAtMs = r.int64(7)
                }
            }
        }
    }
}
