import Foundation
import Storage
import Wire

/// What the cleaner does with an integration message, in one rule that the
/// cleaner's SQL and the operator's list share: a message is kept while its
/// operation still needs it (unfinished, or DEFERRED and so not purged yet)
/// and while it is younger than the retention; otherwise the next pass removes it.
public struct MessageRetention: Sendable {
    static let holdingStatuses: [CleanupOperation.Status] = [.received, .inProgress, .deferred]
    static var holdingStatusList: String { holdingStatuses.map { "'\($0.rawValue)'" }.joined(separator: ", ") }

    public let retentionMillis: Int64

    public init(retention: Duration) {
        retentionMillis = retention.components.seconds * 1000 + retention.components.attoseconds / 1_000_000_000_000_000
    }

    public func cutoff(nowMillis: Int64) -> Int64 { nowMillis - retentionMillis }

    public func verdict(status: CleanupOperation.Status?, receivedAtMillis: Int64, nowMillis: Int64) -> (kept: Bool, reason: String) {
        if let status, Self.holdingStatuses.contains(status) {
            return (true, status == .deferred
                ? "its operation is DEFERRED: kept until the operation's tables are purged"
                : "its operation is \(status.rawValue): kept until the operation finishes")
        }
        let removableAfter = receivedAtMillis + retentionMillis
        if receivedAtMillis >= cutoff(nowMillis: nowMillis) {
            return (true, "younger than the retention (\(retentionMillis / 1000) s): removable after \(Self.iso(removableAfter))")
        }
        return (false, "older than the retention and its operation is \(status?.rawValue ?? "gone"): the next pass removes it")
    }

    static func iso(_ millis: Int64) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

/// The operator's views of the cleanup side: operations by filter, the
/// integration messages and what the cleaner does with them, version trails.
extension GamesCleanupStore {
    public struct OperationFilter: Sendable {
        public var status: CleanupOperation.Status?
        public var action: CleanupOperation.Action?
        public var runID: String?
        public init(status: CleanupOperation.Status? = nil, action: CleanupOperation.Action? = nil, runID: String? = nil) {
            self.status = status
            self.action = action
            self.runID = runID
        }
    }

    /// Operations matching `filter`, in the order they arrived, after the
    /// one numbered `after` (a page token); the last one's number when the page is full.
    public func operations(_ filter: OperationFilter, limit: Int, after: Int64) async throws -> ([CleanupOperation], next: Int64?) {
        var conditions = ["seq > ?"]
        var values: [any SQLBindable] = [after]
        if let status = filter.status { conditions.append("status = ?"); values.append(status.rawValue) }
        if let action = filter.action { conditions.append("action = ?"); values.append(action.rawValue) }
        if let run = filter.runID { conditions.append("run_id = ?"); values.append(run) }
        values.append(limit)
        let sql = "SELECT \(Self.operationColumns), seq FROM operations WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?"
        let arguments = values
        let rows = try await database.read { db in
            try db.query(sql, arguments) { (Self.operation($0), $0.int64(Self.operationColumnCount)) }
        }
        return (rows.map(\.0), rows.count == limit ? rows.last?.1 : nil)
    }

    public struct MessageView: Sendable {
        public var messageID: Int64
        public var requestID: String
        public var operationID: String
        public var status: CleanupOperation.Status?
        public var receivedAtMillis: Int64
    }

    public func messages(limit: Int, after: Int64) async throws -> [MessageView] {
        try await database.read { db in
            try db.query(
                """
                SELECT m.message_id, m.request_id, m.operation_id, o.status, m.received_at
                FROM integration_messages m LEFT JOIN operations o ON o.operation_id = m.operation_id
                WHERE m.message_id > ? ORDER BY m.message_id LIMIT ?
                """, [after, limit]
            ) { r in
                MessageView(
                    messageID: r.int64(0), requestID: r.string(1), operationID: r.string(2),
                    status: r.optionalString(3).flatMap(CleanupOperation.Status.init(rawValue:)), receivedAtMillis: r.int64(4))
            }
        }
    }

    public func versions(tableID: Int64) async throws -> [Croupier_Gametables_V1_Version] {
        try await database.read { db in
            try db.query(
                """
                SELECT version_id, table_id, event, actor, operation_id, before_json, after_json, created_at, correlation_id
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
                    $0.correlationId = r.string(8)
                }
            }
        }
    }
}
