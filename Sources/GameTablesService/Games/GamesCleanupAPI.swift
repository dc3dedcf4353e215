import Storage
import Wire

/// `croupier.gametables.v1.GamesCleanup`: the Games side of the table cleanup.
public struct GamesCleanupAPI: Croupier_Gametables_V1_GamesCleanup.ServiceProtocol {
    let store: GamesCleanupStore
    let worker: CleanupWorker

    public init(store: GamesCleanupStore, worker: CleanupWorker) {
        self.store = store
        self.worker = worker
    }

    public func loadGameTables(
        request: RPCAsyncSequence<Croupier_Gametables_V1_GameTable>, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_LoadSummary {
        var batch: [GameTableRow] = []
        var total: Int64 = 0
        for try await t in request {
            guard t.id > 0 else { throw RPCError(.invalidArgument, "table id must be positive (got \(t.id))") }
            guard !t.currency.isEmpty, t.currency.utf8.count <= 8 else {
                throw RPCError(.invalidArgument, "table \(t.id): currency must be 1–8 characters")
            }
            batch.append(GameTableRow(
                id: t.id, name: t.name, currency: t.currency, active: t.active,
                archivedAtMillis: t.archivedAtMs > 0 ? t.archivedAtMs : nil, inPlay: t.inPlay))
            if batch.count == 1_000 {
                try await store.load(batch)
                total += Int64(batch.count)
                batch.removeAll(keepingCapacity: true)
            }
        }
        try await store.load(batch)
        total += Int64(batch.count)
        return .with { $0.tables = total }
    }

    public func getGameTables(
        request: Croupier_Gametables_V1_GetGameTablesRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_GetGameTablesResponse {
        guard request.ids.count <= 10_000 else { throw RPCError(.invalidArgument, "at most 10,000 ids per call") }
        let rows = try await store.tables(request.ids)
        let found = Set(rows.map(\.id))
        return .with {
            $0.tables = rows.map(GamesProto.table)
            $0.missingIds = request.ids.filter { !found.contains($0) }
        }
    }

    public func cleanupGameTables(
        request: Croupier_Gametables_V1_CleanupGameTablesRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Operation {
        try CleanupOperation.validate(requestID: request.requestId, ids: request.ids, archivedAtMillis: request.archivedAtMs)
        let action: CleanupOperation.Action
        switch request.action {
        case .delete: action = .delete
        case .archive: action = .archive
        default: throw RPCError(.invalidArgument, "action must be DELETE or ARCHIVE")
        }
        let (op, isNew) = try await store.receive(
            requestID: request.requestId, action: action, ids: request.ids, archivedAtMillis: request.archivedAtMs,
            body: request.serializedBytes())
        guard isNew else { return GamesProto.operation(op) }
        if request.async {
            worker.enqueue(op.operationID)
            return GamesProto.operation(op)
        }
        await worker.execute(op.operationID)
        return GamesProto.operation(try await store.operation(op.operationID) ?? op)
    }

    public func getOperation(
        request: Croupier_Gametables_V1_GetOperationRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Operation {
        guard let op = try await store.operation(request.operationId) else {
            throw RPCError(.notFound, "operation \(request.operationId) does not exist")
        }
        return GamesProto.operation(op)
    }

    public func purgeArchived(
        request: Croupier_Gametables_V1_PurgeArchivedRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Operation {
        GamesProto.operation(try await store.purge(request.operationId))
    }

    public func listVersions(
        request: Croupier_Gametables_V1_ListVersionsRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ListVersionsResponse {
        let versions = try await store.versions(tableID: request.tableId)
        return .with { $0.versions = versions }
    }
}

/// Games-side values ↔ API messages.
enum GamesProto {
    static func table(_ t: GameTableRow) -> Croupier_Gametables_V1_GameTable {
        .with {
            $0.id = t.id
            $0.name = t.name
            $0.currency = t.currency
            $0.active = t.active
            $0.archivedAtMs = t.archivedAtMillis ?? 0
            $0.inPlay = t.inPlay
        }
    }

    static func operation(_ o: CleanupOperation) -> Croupier_Gametables_V1_Operation {
        .with {
            $0.operationId = o.operationID
            $0.requestId = o.requestID
            $0.action = o.action == .delete ? .delete : .archive
            $0.status = status(o.status)
            $0.archivedAtMs = o.archivedAtMillis
            $0.requestedIds = o.requestedIDs
            $0.affectedIds = o.affectedIDs
            $0.missingIds = o.missingIDs
            $0.failure = o.failure
            $0.purgeFailures = o.purgeFailures
            $0.purged = Int64(o.purged)
            $0.createdAtMs = o.createdAtMillis
            $0.updatedAtMs = o.updatedAtMillis
        }
    }

    static func status(_ s: CleanupOperation.Status) -> Croupier_Gametables_V1_OperationStatus {
        switch s {
        case .received: return .received
        case .inProgress: return .inProgress
        case .deferred: return .deferred
        case .processed: return .processed
        case .failed: return .failed
        }
    }
}
