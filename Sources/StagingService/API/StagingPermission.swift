import Wire

/// The permissions StagingService methods need, and the methods that are
/// service to service only. Reading, writing (imports and manual changes),
/// deploying to production and administering the diff queue each need their
/// own: a token that may fix a card's name may not ship the game.
public enum StagingPermission {
    public static let read = "staging:read"
    public static let write = "staging:write"
    public static let deploy = "staging:deploy"
    public static let admin = "staging:admin"

    typealias M = Croupier_Staging_V1_StagingService.Method

    /// Method path → permission: the gateway's defaults, and what the service itself checks.
    public static let byMethod: [String: String] = {
        var table: [String: String] = [:]
        for m in [
            M.getImportRun, M.getEntity, M.listEntities, M.getDiff, M.getLocks, M.watchEvents, M.getQueueStats, M.listImportRuns,
            M.listProductionEntities, M.listDiffRequests, M.listGames,
        ] { table[m.path] = read }
        for m in [M.importGame, M.createOverride, M.createEntity, M.uploadImage, M.generateDiff] { table[m.path] = write }
        table[M.deploy.path] = deploy
        for m in [M.listDeadLetters, M.redriveDeadLetters, M.releaseDiffRequest, M.setDiffQueuePaused] { table[m.path] = admin }
        return table
    }()

    /// Called only by other services over Wire (the importer asks for its
    /// diff); the gateway never routes them.
    public static let internalMethods: Set<String> = [Croupier_Staging_V1_DiffQueue.Method.enqueueDiff.path]

    /// The service's own check, behind the gateway's: PERMISSION_DENIED unless
    /// the forwarded caller holds what `method` needs. Fails closed: a method
    /// missing from `byMethod` is refused to every outside caller (a test
    /// checks that every StagingService method has an entry).
    static func require(_ method: MethodDescriptor, _ context: ServerContext) throws {
        let caller = ForwardedCaller(context.metadata)
        guard let needed = byMethod[method.path] else {
            if let who = caller.principal {
                throw RPCError(.permissionDenied, "\(method.path) names no permission; \(who) may not call it")
            }
            return
        }
        try caller.require(needed, for: method.path)
    }
}
