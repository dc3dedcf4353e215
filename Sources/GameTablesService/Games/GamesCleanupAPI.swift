import Storage
import Wire

/// `croupier.gametables.v1.GamesCleanup`: the Games side of the table cleanup.
public struct GamesCleanupAPI: Croupier_Gametables_V1_GamesCleanup.ServiceProtocol {
    let store: GamesCleanupStore
    let worker: CleanupWorker
    let retention: MessageRetention

    public init(store: GamesCleanupStore, worker: CleanupWorker, retention: MessageRetention) {
        self.store = store
        self.worker = worker
        self.retention = retention
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
        guard request.runId.utf8.count <= 200 else { throw RPCError(.invalidArgument, "run_id is at most 200 bytes") }
        let (op, isNew) = try await store.receive(
            requestID: request.requestId, action: action, ids: request.ids, archivedAtMillis: request.archivedAtMs,
            body: request.serializedBytes(), runID: request.runId, actor: ChangeActor(context))
        guard isNew else { return GamesProto.operation(op) }
        worker.log(GamesLog.line("cleanup_operation_received", [
            ("operation_id", op.operationID), ("request_id", op.requestID), ("run_id", op.runID), ("action", op.action.rawValue),
            ("principal", op.actor.principal),
        ]))
        if request.async {
            worker.enqueue(op.operationID)
            return GamesProto.operation(op)
        }
        await worker.execute(op.operationID)
        return GamesProto.operation(try await store.operation(op.operationID) ?? op)
    }

    /// With `wait_ms`, answers once the operation is final (DEFERRED,
    /// PROCESSED, FAILED) or the wait (or the call's deadline) has passed.
    public func getOperation(
        request: Croupier_Gametables_V1_GetOperationRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Operation {
        guard (0...30_000).contains(request.waitMs) else { throw RPCError(.invalidArgument, "wait_ms must be 0–30,000") }
        var deadline = ContinuousClock.now + .milliseconds(Int(request.waitMs))
        if let callDeadline = context.deadline { deadline = min(deadline, callDeadline - .milliseconds(50)) }
        var signal: ChangeSignal?
        while true {
            let generation = signal?.generation ?? 0
            guard let op = try await store.operation(request.operationId) else {
                throw RPCError(.notFound, "operation \(request.operationId) does not exist")
            }
            let now = ContinuousClock.now
            if op.isFinal || now >= deadline || Task.isCancelled {
                if op.isFinal, signal != nil { store.settled.drop(op.operationID) }
                var answer = GamesProto.operation(op)
                if !op.isFinal, let progress = worker.progress(of: op.operationID) {
                    answer.batchesChecked = Int32(progress.checked)
                    answer.batches = Int32(progress.batches)
                }
                return answer
            }
            // Take the operation's signal, then read again: a settle in between is not missed.
            guard let taken = signal else {
                signal = store.settled.signal(for: op.operationID)
                continue
            }
            await taken.wait(since: generation, timeout: min(deadline - now, .seconds(1)))
        }
    }

    public func purgeArchived(
        request: Croupier_Gametables_V1_PurgeArchivedRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_Operation {
        GamesProto.operation(try await store.purge(request.operationId, actor: ChangeActor(context)))
    }

    public func purgeCleanupRun(
        request: Croupier_Gametables_V1_PurgeCleanupRunRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_PurgeCleanupRunResponse {
        let result = try await store.purge(runID: request.runId, actor: ChangeActor(context))
        return .with {
            $0.operations = result.operations.map(GamesProto.operation)
            $0.purged = Int64(result.purged)
            $0.archiveOperationsKept = Int64(result.archiveOperationsKept)
        }
    }

    public func listOperations(
        request: Croupier_Gametables_V1_ListOperationsRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ListOperationsResponse {
        let size = try GamesProto.pageSize(request.pageSize)
        let after = try GamesProto.pageToken(request.pageToken)
        var filter = GamesCleanupStore.OperationFilter()
        if request.status != .unspecified {
            guard let status = GamesProto.status(request.status) else { throw RPCError(.invalidArgument, "unknown status \(request.status)") }
            filter.status = status
        }
        switch request.action {
        case .unspecified: break
        case .delete: filter.action = .delete
        case .archive: filter.action = .archive
        case .unrecognized(let n): throw RPCError(.invalidArgument, "unknown action \(n)")
        }
        if !request.runId.isEmpty { filter.runID = request.runId }
        let (operations, next) = try await store.operations(filter, limit: size, after: after)
        return .with {
            $0.operations = operations.map(GamesProto.operation)
            $0.nextPageToken = next.map(String.init) ?? ""
        }
    }

    public func listIntegrationMessages(
        request: Croupier_Gametables_V1_ListIntegrationMessagesRequest, context: ServerContext
    ) async throws -> Croupier_Gametables_V1_ListIntegrationMessagesResponse {
        let size = try GamesProto.pageSize(request.pageSize)
        let messages = try await store.messages(limit: size, after: try GamesProto.pageToken(request.pageToken))
        let now = store.clock.nowMillis()
        let retention = self.retention
        return .with {
            $0.retentionSeconds = retention.retentionMillis / 1000
            $0.messages = messages.map { m in
                let verdict = retention.verdict(status: m.status, receivedAtMillis: m.receivedAtMillis, nowMillis: now)
                return .with {
                    $0.messageId = m.messageID
                    $0.requestId = m.requestID
                    $0.operationId = m.operationID
                    $0.operationStatus = m.status.map(GamesProto.status) ?? .unspecified
                    $0.receivedAtMs = m.receivedAtMillis
                    $0.kept = verdict.kept
                    $0.reason = verdict.reason
                    $0.removableAfterMs = m.receivedAtMillis + retention.retentionMillis
                }
            }
            $0.nextPageToken = messages.count == size ? String(messages.last!.messageID) : ""
        }
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
            $0.runId = o.runID
            $0.principal = o.actor.principal
            $0.correlationId = o.actor.correlationID
        }
    }

    /// 1–200 rows per page; 50 when unset.
    static func pageSize(_ requested: Int32) throws -> Int {
        guard (0...200).contains(requested) else { throw RPCError(.invalidArgument, "page_size must be 1–200 (got \(requested))") }
        return requested == 0 ? 50 : Int(requested)
    }

    /// A page token is the last row id of the previous page.
    static func pageToken(_ token: String) throws -> Int64 {
        if token.isEmpty { return 0 }
        guard let n = Int64(token), n > 0 else { throw RPCError(.invalidArgument, "page_token is not one this service issued") }
        return n
    }

    /// The inverse of `status(_:)` below; nil for UNSPECIFIED and unknown values.
    static func status(_ s: Croupier_Gametables_V1_OperationStatus) -> CleanupOperation.Status? {
        CleanupOperation.Status.allCases.first { status($0) == s }
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
