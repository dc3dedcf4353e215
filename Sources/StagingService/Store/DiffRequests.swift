import Storage
import Wire

/// The diff queue (SQS FIFO semantics, durable in SQLite): group = game
/// slug, so one diff at a time per game; content-based de-duplication over
/// 5 minutes; visibility timeout 30 minutes by default; 3 receives, then the
/// dead-letter queue.
public struct DiffRequests: Sendable {
    public let queue: DurableQueue

    static func configuration(visibilityTimeoutMillis: Int64) -> QueueConfiguration {
        var c = QueueConfiguration(name: "staging-diffs")
        c.visibilityTimeoutMillis = visibilityTimeoutMillis
        c.maxReceiveCount = 3
        c.deduplicationWindowMillis = 5 * 60 * 1000
        return c
    }

    /// Enqueues inside the caller's transaction (the outbox of manual
    /// mutations). The caller reads `origin` before its transaction: a
    /// write closure runs on the database's writer, outside the call's task.
    @discardableResult
    func send(_ tx: Transaction, _ r: Croupier_Staging_V1_EnqueueDiffRequest, origin: MessageOrigin) throws -> SendResult {
        try queue.send(tx, group: r.gameSlug, body: r.serializedBytes(), scope: Self.scope(r), origin: origin)
    }

    /// Validates and enqueues in a transaction of its own.
    public func send(_ r: Croupier_Staging_V1_EnqueueDiffRequest) async throws -> SendResult {
        try Self.validate(r)
        return try await queue.send(group: r.gameSlug, body: r.serializedBytes(), scope: Self.scope(r), origin: Self.origin)
    }

    /// A request goes with the call that made it (an import's upload, an
    /// override, an operator's GenerateDiff): its correlation id and trace.
    /// The worker that produces its diff, later and maybe in another
    /// replica, logs under them.
    static var origin: MessageOrigin {
        let request = RequestContext.current
        return MessageOrigin(traceHeader: request.trace?.traceparent, correlationID: request.correlationID)
    }

    /// The request a received diff request was sent for.
    static func context(of message: ReceivedMessage) -> RequestContext {
        RequestContext(correlationID: message.origin.correlationID, traceparent: message.origin.traceHeader)
    }

    /// An import's request collapses with any earlier one for the same run
    /// (the importer re-sends until acknowledged: one diff per import); a
    /// manual or operator request only with one still waiting to be handled,
    /// so asking again after a diff ran, failed or was dead-lettered always
    /// produces a new diff.
    static func scope(_ r: Croupier_Staging_V1_EnqueueDiffRequest) -> DeduplicationScope {
        r.trigger == .import ? .window : .whilePending
    }

    /// A queued message's request as operators see it (empty if it does not decode).
    static func decode(_ body: [UInt8]) -> Croupier_Staging_V1_EnqueueDiffRequest {
        (try? Croupier_Staging_V1_EnqueueDiffRequest(serializedBytes: body)) ?? .init()
    }

    static func validate(_ r: Croupier_Staging_V1_EnqueueDiffRequest) throws {
        try EntityRules.checkGame(r.gameSlug)
        switch r.trigger {
        case .import:
            guard !r.importRunId.isEmpty else { throw RPCError(.invalidArgument, "an IMPORT diff request needs import_run_id") }
        case .manual:
            if !r.entitySlug.isEmpty || !r.entityType.isEmpty {
                try EntityRules.checkType(r.entityType)
                try EntityRules.checkSlug(r.entitySlug, "entity_slug")
            }
        default:
            throw RPCError(.invalidArgument, "trigger must be IMPORT or MANUAL")
        }
    }
}

/// `croupier.staging.v1.DiffQueue`: what the importer calls over Wire. It
/// is internal (`StagingPermission.internalMethods`): the gateway never
/// routes it, and a call that carries a forwarded principal (so came from
/// outside) is refused here too. The game must exist, and an IMPORT request
/// must name a run of that game.
public struct DiffQueueAPI: Croupier_Staging_V1_DiffQueue.ServiceProtocol {
    let requests: DiffRequests
    let database: Database

    public func enqueueDiff(
        request: Croupier_Staging_V1_EnqueueDiffRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_EnqueueDiffResponse {
        if let who = ForwardedCaller(context.metadata).principal {
            throw RPCError(.permissionDenied, "DiffQueue.EnqueueDiff is internal (service to service); \(who) may use GenerateDiff")
        }
        try DiffRequests.validate(request)
        let (game, run) = (request.gameSlug, request.importRunId)
        try await database.read { db in
            guard try EntityRows.gameExists(db, game) else { throw RPCError(.notFound, "game \(game) does not exist") }
            if request.trigger == .import, try db.queryFirst(
                "SELECT 1 FROM import_runs WHERE run_id = ? AND game_slug = ?", [run, game], { _ in true }) == nil
            {
                throw RPCError(.notFound, "import run \(run) of \(game) does not exist")
            }
        }
        let r = try await requests.send(request)
        return .with {
            $0.messageId = r.messageID
            $0.duplicate = r.duplicate
        }
    }
}
