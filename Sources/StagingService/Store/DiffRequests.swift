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

    /// Validates and enqueues inside the caller's transaction (the outbox of manual mutations).
    @discardableResult
    func send(_ tx: Transaction, _ r: Croupier_Staging_V1_EnqueueDiffRequest) throws -> SendResult {
        try queue.send(tx, group: r.gameSlug, body: r.serializedBytes())
    }

    /// Validates and enqueues in a transaction of its own.
    public func send(_ r: Croupier_Staging_V1_EnqueueDiffRequest) async throws -> SendResult {
        try Self.validate(r)
        return try await queue.send(group: r.gameSlug, body: r.serializedBytes())
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

/// `croupier.staging.v1.DiffQueue`: what the importer calls over Wire.
public struct DiffQueueAPI: Croupier_Staging_V1_DiffQueue.ServiceProtocol {
    let requests: DiffRequests

    public func enqueueDiff(
        request: Croupier_Staging_V1_EnqueueDiffRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_EnqueueDiffResponse {
        let r = try await requests.send(request)
        return .with {
            $0.messageId = r.messageID
            $0.duplicate = r.duplicate
        }
    }
}
