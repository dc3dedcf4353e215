import Storage
import Wire

/// `croupier.staging.v1.StagingService`: validation and status codes in
/// front of the stores and jobs.
public struct StagingAPI: Croupier_Staging_V1_StagingService.ServiceProtocol {
    let role: StagingRole

    public func importGame(
        request: RPCAsyncSequence<Croupier_Staging_V1_ImportGameRequest>, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ImportGameResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.importGame, context)
        var parts = request.makeAsyncIterator()
        guard let first = try await parts.next(), case .start(let start)? = first.part else {
            throw RPCError(.invalidArgument, "the first message of an import must be `start`")
        }
        try EntityRules.checkGame(start.gameSlug)
        let game = start.gameSlug
        let runID = try await role.imports.begin(
            game: game, source: start.options?.source ?? "", request: RequestContext.current)
        let held = LeaseKeeper.Held(game: game, kind: .importLock, holder: runID)
        role.leases.hold(held)
        var received = 0
        var progress = ProgressThrottle(interval: .milliseconds(role.settings.progressIntervalMillis))
        do {
            while let part = try await parts.next() {
                guard case .batch(let batch)? = part.part else {
                    throw RPCError(.invalidArgument, "after `start`, an import carries only `batch` messages")
                }
                for e in batch.entities { try EntityRules.check(e) }
                let report = progress.due(done: received + batch.entities.count) ? "received \(received + batch.entities.count)" : nil
                try await role.imports.receive(runID: runID, game: game, firstSeq: received + 1, batch.entities, progress: report)
                role.leases.hold(held)  // again: a lease that ran out and was taken back by `receive` is kept from here on
                received += batch.entities.count
            }
            try await role.imports.complete(runID: runID, game: game)
        } catch {
            // Not acknowledged: the run ends here (a run given up meanwhile is FAILED already, and stays as it is).
            role.leases.drop(held)
            try? await role.imports.abandon(runID: runID, reason: "the upload broke off after \(received) entities: \(error)")
            throw error
        }
        role.log(JSONLine.event(service: "staging", "import_received", [
            ("import_run_id", runID), ("game", game), ("entities", String(received)),
        ]))
        return .with {
            $0.importRunId = runID
            $0.entitiesReceived = Int64(received)
        }
    }

    public func getImportRun(
        request: Croupier_Staging_V1_GetImportRunRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ImportRun {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.getImportRun, context)
        return try await role.imports.run(request.importRunId)
    }

    public func createOverride(
        request: Croupier_Staging_V1_CreateOverrideRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_Entity {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.createOverride, context)
        try EntityRules.checkKey(game: request.gameSlug, type: request.entityType, slug: request.slug)
        guard !request.fields.isEmpty else { throw RPCError(.invalidArgument, "an override names at least one field") }
        try EntityRules.checkFields(request.fields, of: request.slug)
        return try await role.manual.override(game: request.gameSlug, type: request.entityType, slug: request.slug, fields: request.fields).proto
    }

    public func createEntity(
        request: Croupier_Staging_V1_CreateEntityRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_Entity {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.createEntity, context)
        try EntityRules.checkGame(request.gameSlug)
        guard let e = request.entity else { throw RPCError(.invalidArgument, "entity is required") }
        try EntityRules.check(e)
        return try await role.manual.create(game: request.gameSlug, e).proto
    }

    public func uploadImage(
        request: Croupier_Staging_V1_UploadImageRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_Entity {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.uploadImage, context)
        try EntityRules.checkKey(game: request.gameSlug, type: request.entityType, slug: request.slug)
        try ImageRules.check(contentType: request.contentType, data: request.data, maxBytes: role.settings.maxImageBytes)
        return try await role.manual.uploadImage(
            game: request.gameSlug, type: request.entityType, slug: request.slug, contentType: request.contentType, data: request.data
        ).proto
    }

    public func getEntity(
        request: Croupier_Staging_V1_GetEntityRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_Entity {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.getEntity, context)
        try EntityRules.checkKey(game: request.gameSlug, type: request.entityType, slug: request.slug)
        let (game, type, slug) = (request.gameSlug, request.entityType, request.slug)
        guard let e = try await role.database.read({ db in try EntityRows.entity(db, game: game, type: type, slug: slug) }) else {
            throw RPCError(.notFound, "\(type) \(slug) does not exist in \(game)")
        }
        return e.proto
    }

    public func listEntities(
        request: Croupier_Staging_V1_ListEntitiesRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListEntitiesResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.listEntities, context)
        try EntityRules.checkGame(request.gameSlug)
        if !request.entityType.isEmpty { try EntityRules.checkType(request.entityType) }
        guard (0...1_000).contains(request.pageSize) else { throw RPCError(.invalidArgument, "page_size must be 1–1000 (0 means 100)") }
        let size = request.pageSize == 0 ? 100 : Int(request.pageSize)
        let after = try PageToken.decode(request.pageToken)
        let game = request.gameSlug
        let type = request.entityType.isEmpty ? nil : request.entityType
        let includeRemoved = request.includeRemoved
        let page = try await role.database.read { db -> [StagingEntity] in
            guard try EntityRows.gameExists(db, game) else { throw RPCError(.notFound, "game \(game) has nothing in staging") }
            return try EntityRows.page(db, game: game, type: type, after: after, limit: size + 1, includeRemoved: includeRemoved)
        }
        return .with {
            $0.entities = page.prefix(size).map(\.proto)
            if page.count > size, let last = page.prefix(size).last { $0.nextPageToken = PageToken.encode(last.type, last.slug) }
        }
    }

    public func generateDiff(
        request: Croupier_Staging_V1_GenerateDiffRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_GenerateDiffResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.generateDiff, context)
        try EntityRules.checkGame(request.gameSlug)
        let game = request.gameSlug
        guard try await role.database.read({ db in try EntityRows.gameExists(db, game) }) else {
            throw RPCError(.notFound, "game \(game) has nothing in staging")
        }
        let r = try await role.requests.send(.with {
            $0.gameSlug = game
            $0.trigger = .manual
        })
        return .with {
            $0.message = "Diff generation queued"
            $0.messageId = r.messageID
            $0.duplicate = r.duplicate
        }
    }

    public func getDiff(request: Croupier_Staging_V1_GetDiffRequest, context: ServerContext) async throws -> Croupier_Staging_V1_Diff {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.getDiff, context)
        try EntityRules.checkGame(request.gameSlug)
        guard (0...1_000).contains(request.pageSize) else { throw RPCError(.invalidArgument, "page_size must be 1–1000 (0 means 100)") }
        return try await role.diffs.diff(
            game: request.gameSlug, after: try PageToken.decode(request.pageToken), limit: request.pageSize == 0 ? 100 : Int(request.pageSize))
    }

    public func deploy(request: Croupier_Staging_V1_DeployRequest, context: ServerContext) async throws -> Croupier_Staging_V1_DeployResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.deploy, context)
        try EntityRules.checkGame(request.gameSlug)
        let (upserted, deleted) = try await role.deployer.deploy(game: request.gameSlug)
        return .with {
            $0.upserted = Int64(upserted)
            $0.deleted = Int64(deleted)
        }
    }

    public func getLocks(request: Croupier_Staging_V1_GetLocksRequest, context: ServerContext) async throws -> Croupier_Staging_V1_GetLocksResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.getLocks, context)
        try EntityRules.checkGame(request.gameSlug)
        let game = request.gameSlug
        guard try await role.database.read({ db in try EntityRows.gameExists(db, game) }) else {
            throw RPCError(.notFound, "game \(game) does not exist")
        }
        let locks = try await role.locks.locks(game: game)
        return .with { $0.locks = locks }
    }

    public func watchEvents(
        request: Croupier_Staging_V1_WatchEventsRequest, response: RPCWriter<Croupier_Staging_V1_StagingEvent>, context: ServerContext
    ) async throws {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.watchEvents, context)
        if !request.gameSlug.isEmpty { try EntityRules.checkGame(request.gameSlug) }
        guard request.afterOffset >= 0 else { throw RPCError(.invalidArgument, "after_offset must not be negative") }
        let stream = request.gameSlug.isEmpty ? nil : request.gameSlug
        do {
            if request.untilCaughtUp {
                var after = request.afterOffset
                while true {
                    let page = try await role.eventLog.read(after: after, limit: 500, stream: stream)
                    for e in page { try await response.write(StagingEvents.decode(e)) }
                    guard let last = page.last else { return }
                    after = last.offset
                }
            }
            for try await e in role.eventLog.subscribe(after: request.afterOffset, stream: stream, poll: .milliseconds(200)) {
                try await response.write(StagingEvents.decode(e))
            }
        } catch let e as EventLogError {
            throw RPCError(.outOfRange, e.description)
        }
    }

    public func getQueueStats(request: Croupier_Staging_V1_GetQueueStatsRequest, context: ServerContext) async throws -> Croupier_Staging_V1_QueueStats {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.getQueueStats, context)
        return Self.proto(try await role.requests.queue.stats())
    }

    static func proto(_ s: QueueStats) -> Croupier_Staging_V1_QueueStats {
        .with {
            $0.depth = Int64(s.depth)
            $0.inFlight = Int64(s.inFlight)
            $0.oldestAgeMs = s.oldestAgeMillis
            $0.deadLetters = Int64(s.deadLetters)
            if let pause = s.pause {
                $0.paused = true
                $0.pausedAtMs = pause.atMillis
                $0.pausedBy = pause.by
            }
        }
    }

    public func listDeadLetters(
        request: Croupier_Staging_V1_ListDeadLettersRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_ListDeadLettersResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.listDeadLetters, context)
        let letters = try await role.requests.queue.deadLetters(limit: try Self.pageSize(request.limit))
        return .with {
            $0.deadLetters = letters.map { d in
                .with {
                    $0.messageId = d.id
                    $0.gameSlug = d.groupID
                    $0.request = DiffRequests.decode(d.body)
                    $0.receiveCount = Int64(d.receiveCount)
                    $0.sentAtMs = d.sentAtMillis
                    $0.diedAtMs = d.diedAtMillis
                }
            }
        }
    }

    public func redriveDeadLetters(
        request: Croupier_Staging_V1_RedriveDeadLettersRequest, context: ServerContext
    ) async throws -> Croupier_Staging_V1_RedriveDeadLettersResponse {
        try StagingPermission.require(Croupier_Staging_V1_StagingService.Method.redriveDeadLetters, context)
        let n = try await role.requests.queue.redrive(ids: request.messageIds.isEmpty ? nil : request.messageIds)
        return .with { $0.redriven = Int64(n) }
    }
}

/// Images: the declared type must be an image type and the bytes must start as that type does.
enum ImageRules {
    static let signatures: [String: [[UInt8]]] = [
        "image/png": [[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]],
        "image/jpeg": [[0xFF, 0xD8, 0xFF]],
        "image/gif": [Array("GIF87a".utf8), Array("GIF89a".utf8)],
        "image/webp": [Array("RIFF".utf8)],
    ]

    static func check(contentType: String, data: [UInt8], maxBytes: Int) throws {
        guard let magic = signatures[contentType] else {
            throw RPCError(.invalidArgument, "content_type must be one of \(signatures.keys.sorted().joined(separator: ", "))")
        }
        guard !data.isEmpty else { throw RPCError(.invalidArgument, "the image is empty") }
        guard data.count <= maxBytes else { throw RPCError(.invalidArgument, "the image is \(data.count) bytes (at most \(maxBytes))") }
        guard magic.contains(where: { data.starts(with: $0) }),
            contentType != "image/webp" || (data.count >= 12 && Array(data[8..<12]) == Array("WEBP".utf8))
        else { throw RPCError(.invalidArgument, "the data is not a \(contentType) image") }
    }
}
