import Storage
import Wire

/// What an operator needs to see and do beyond the seed's calls: the games,
/// a game's import runs, production as deployed, the diff queue's live
/// requests, releasing a request a crashed worker left in flight, and
/// pausing the diff queue.
extension StagingAPI {
    typealias M = Croupier_Staging_V1_StagingService.Method

    public func listGames(
        request: Croupier_Staging_V1_ListGamesRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListGamesResponse {
        try StagingPermission.require(M.listGames, context)
        let size = try Self.pageSize(request.pageSize)
        let after = request.pageToken.isEmpty ? "" : try PageToken.decode(request.pageToken).0
        let (games, more) = try await role.database.read { db in
            let slugs = try EntityRows.games(db, after: after, limit: size + 1)
            let page = try slugs.prefix(size).map { slug in
                let latest = try db.queryFirst(
                    "SELECT \(ImportStore.runColumns) FROM import_runs WHERE game_slug = ? ORDER BY created_at DESC, run_id DESC LIMIT 1",
                    [slug], ImportStore.run)
                return Croupier_Staging_V1_GameSummary.with { g in
                    g.gameSlug = slug
                    if let latest { g.latestRun = latest }
                }
            }
            return (page, slugs.count > size)
        }
        return .with {
            $0.games = games
            if more, let last = games.last { $0.nextPageToken = PageToken.encode(last.gameSlug, "") }
        }
    }

    public func listImportRuns(
        request: Croupier_Staging_V1_ListImportRunsRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListImportRunsResponse {
        try StagingPermission.require(M.listImportRuns, context)
        try EntityRules.checkGame(request.gameSlug)
        let size = try Self.pageSize(request.pageSize)
        // Newest first: the token is the last run's (created_at, run_id).
        let (createdText, lastRun) = try PageToken.decode(request.pageToken)
        let before = request.pageToken.isEmpty ? Int64.max : try Self.number(createdText, request.pageToken)
        let game = request.gameSlug
        let runs = try await role.database.read { db in
            guard try EntityRows.gameExists(db, game) else { throw RPCError(.notFound, "game \(game) has no import runs") }
            return try db.query(
                """
                SELECT \(ImportStore.runColumns) FROM import_runs WHERE game_slug = ? AND (created_at < ? OR (created_at = ? AND run_id < ?))
                ORDER BY created_at DESC, run_id DESC LIMIT ?
                """, [game, before, before, request.pageToken.isEmpty ? "\u{10FFFF}" : lastRun, size + 1], ImportStore.run)
        }
        return .with {
            $0.runs = Array(runs.prefix(size))
            if runs.count > size, let last = runs.prefix(size).last { $0.nextPageToken = PageToken.encode(String(last.createdAtMs), last.importRunId) }
        }
    }

    public func listProductionEntities(
        request: Croupier_Staging_V1_ListProductionEntitiesRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListProductionEntitiesResponse {
        try StagingPermission.require(M.listProductionEntities, context)
        try EntityRules.checkGame(request.gameSlug)
        if !request.entityType.isEmpty { try EntityRules.checkType(request.entityType) }
        let size = try Self.pageSize(request.pageSize)
        let after = try PageToken.decode(request.pageToken)
        let (game, type) = (request.gameSlug, request.entityType.isEmpty ? nil : request.entityType)
        let rows = try await role.database.read { db in
            guard try EntityRows.gameExists(db, game) else { throw RPCError(.notFound, "game \(game) has nothing in staging") }
            return try db.query(
                """
                SELECT entity_type, slug, fields FROM production_entities
                WHERE game_slug = ? AND (entity_type, slug) > (?, ?) AND (? IS NULL OR entity_type = ?)
                ORDER BY entity_type, slug LIMIT ?
                """, [game, after.0, after.1, type, type, size + 1], { ($0.string(0), $0.string(1), $0.blob(2)) })
        }
        return .with {
            $0.entities = rows.prefix(size).map { r in .with { $0.entityType = r.0; $0.slug = r.1; $0.fields = FieldBlob.decode(r.2) } }
            if rows.count > size, let last = rows.prefix(size).last { $0.nextPageToken = PageToken.encode(last.0, last.1) }
        }
    }

    public func listDiffRequests(
        request: Croupier_Staging_V1_ListDiffRequestsRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListDiffRequestsResponse {
        try StagingPermission.require(M.listDiffRequests, context)
        let live = try await role.requests.queue.messages(limit: try Self.pageSize(request.limit), afterID: request.afterMessageId)
        return .with {
            $0.requests = live.map { m in
                .with {
                    $0.messageId = m.id
                    $0.gameSlug = m.groupID
                    $0.request = DiffRequests.decode(m.body)
                    $0.receiveCount = Int64(m.receiveCount)
                    $0.sentAtMs = m.sentAtMillis
                    $0.visibleAtMs = m.visibleAtMillis
                    $0.inFlight = m.inFlight
                }
            }
        }
    }

    public func releaseDiffRequest(
        request: Croupier_Staging_V1_ReleaseDiffRequestRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ReleaseDiffRequestResponse {
        try StagingPermission.require(M.releaseDiffRequest, context)
        guard try await role.requests.queue.release(messageID: request.messageId) else {
            throw RPCError(.failedPrecondition, "diff request \(request.messageId) is not in flight (waiting, done or dead-lettered)")
        }
        return .init()
    }

    public func setDiffQueuePaused(
        request: Croupier_Staging_V1_SetDiffQueuePausedRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_QueueStats {
        try StagingPermission.require(M.setDiffQueuePaused, context)
        let queue = role.requests.queue
        if request.paused {
            let by = ForwardedCaller(context.metadata).author
            if try await queue.pause(by: by) {
                role.log(JSONLine.event(service: "staging", "diff_queue_paused", [("by", by)]))
            }
        } else if try await queue.resume() {
            role.log(JSONLine.event(service: "staging", "diff_queue_resumed", []))
        }
        return Self.proto(try await queue.stats())
    }

    /// 1–1000, 100 for 0.
    static func pageSize(_ requested: Int32) throws -> Int {
        guard (0...1_000).contains(requested) else { throw RPCError(.invalidArgument, "page size must be 1–1000 (0 means 100)") }
        return requested == 0 ? 100 : Int(requested)
    }

    private static func number(_ text: String, _ token: String) throws -> Int64 {
        guard let n = Int64(text) else { throw RPCError(.invalidArgument, "page_token '\(token.prefix(100))' is not one this service issued") }
        return n
    }
}
