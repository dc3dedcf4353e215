import Storage
import Wire

/// The client-area estate: environments, servers, tables, GGR aggregates.
public struct EstateStore: Sendable {
    let database: Database

    /// Upserts a batch of estate records in one transaction.
    public func load(_ records: [Croupier_Gametables_V1_EstateRecord]) async throws -> Croupier_Gametables_V1_LoadSummary {
        for r in records { try Self.validate(r) }
        return try await database.write { tx in
            var summary = Croupier_Gametables_V1_LoadSummary()
            for r in records {
                switch r.record {
                case .environment(let e):
                    try tx.execute(
                        """
                        INSERT INTO environments (environment_id, name, required_currencies) VALUES (?, ?, ?)
                        ON CONFLICT (environment_id) DO UPDATE SET name = excluded.name, required_currencies = excluded.required_currencies
                        """, [e.environmentId, e.name, e.requiredCurrencies.joined(separator: ",")])
                    summary.environments += 1
                case .server(let s):
                    try tx.execute(
                        """
                        INSERT INTO servers (server_id, environment_id, active) VALUES (?, ?, ?)
                        ON CONFLICT (server_id) DO UPDATE SET environment_id = excluded.environment_id, active = excluded.active
                        """, [s.serverId, s.environmentId, s.active])
                    summary.servers += 1
                case .table(let t):
                    try tx.execute(
                        """
                        INSERT INTO rgs_tables (table_id, server_id, bo_id, currency, active, archived_at) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (table_id) DO UPDATE SET server_id = excluded.server_id, bo_id = excluded.bo_id,
                            currency = excluded.currency, active = excluded.active, archived_at = excluded.archived_at
                        """, [t.tableId, t.serverId, t.boId, t.currency, t.active, t.archivedAtMs > 0 ? t.archivedAtMs : nil])
                    summary.tables += 1
                case .traffic(let g):
                    try tx.execute(
                        """
                        INSERT INTO ggr_aggregates (table_id, period, rounds, ggr) VALUES (?, ?, ?, ?)
                        ON CONFLICT (table_id, period) DO UPDATE SET rounds = excluded.rounds, ggr = excluded.ggr
                        """, [g.tableId, g.period, g.rounds, g.ggr])
                    summary.traffic += 1
                case nil:
                    break
                }
            }
            return summary
        }
    }

    static func validate(_ r: Croupier_Gametables_V1_EstateRecord) throws {
        func id(_ value: String, _ field: String) throws {
            guard GameID.isValid(value) else { throw RPCError(.invalidArgument, "\(field) must be 1–128 characters without spaces (got '\(value)')") }
        }
        switch r.record {
        case .environment(let e):
            try id(e.environmentId, "environment_id")
            guard e.requiredCurrencies.allSatisfy({ (1...8).contains($0.utf8.count) && !$0.contains(",") }) else {
                throw RPCError(.invalidArgument, "environment \(e.environmentId): each required currency must be 1–8 characters")
            }
        case .server(let s):
            try id(s.serverId, "server_id")
            try id(s.environmentId, "environment_id")
        case .table(let t):
            try id(t.tableId, "table_id")
            try id(t.serverId, "server_id")
            guard (1...8).contains(t.currency.utf8.count) else { throw RPCError(.invalidArgument, "table \(t.tableId): currency must be 1–8 characters") }
        case .traffic(let g):
            try id(g.tableId, "table_id")
            guard g.rounds >= 0, g.ggr.isFinite else { throw RPCError(.invalidArgument, "traffic of \(g.tableId): rounds must be ≥ 0 and ggr finite") }
        case nil:
            throw RPCError(.invalidArgument, "an estate record must carry an environment, server, table or traffic")
        }
    }

    public func environments() async throws -> Croupier_Gametables_V1_ListEnvironmentsResponse {
        try await database.read { db in
            let envs = try db.query("SELECT environment_id, name, required_currencies FROM environments ORDER BY environment_id") { r in
                Croupier_Gametables_V1_Environment.with {
                    $0.environmentId = r.string(0)
                    $0.name = r.string(1)
                    $0.requiredCurrencies = r.string(2).split(separator: ",").map(String.init)
                }
            }
            let servers = try db.query("SELECT server_id, environment_id, active FROM servers ORDER BY environment_id, server_id") { r in
                Croupier_Gametables_V1_Server.with {
                    $0.serverId = r.string(0)
                    $0.environmentId = r.string(1)
                    $0.active = r.bool(2)
                }
            }
            return .with {
                $0.environments = envs
                $0.servers = servers
            }
        }
    }

    static let tableColumns = "table_id, server_id, bo_id, currency, active, archived_at"
    static func table(_ r: Row) -> RgsTableRow {
        RgsTableRow(tableID: r.string(0), serverID: r.string(1), boID: r.int64(2), currency: r.string(3), active: r.bool(4), archivedAtMillis: r.optionalInt64(5))
    }

    public func tables(serverID: String) async throws -> [RgsTableRow] {
        try await database.read { db in
            try db.query("SELECT \(Self.tableColumns) FROM rgs_tables WHERE server_id = ? ORDER BY table_id", [serverID], Self.table)
        }
    }
}
