import Storage

/// The four event types, each written by exactly one component, always in
/// the transaction of the change it reports (the outbox):
/// `lock-change` by LockStore, `entity-change` by ManualChanges,
/// `diff-change` by DiffStore, `deploy-status` by Deployer.
/// The stream of an event is its game slug, so WatchEvents can follow one
/// game or all of them from an offset without gaps or duplicates.
public struct StagingEvents: Sendable {
    public enum Kind: String, Sendable {
        case lockChange = "lock-change"
        case diffChange = "diff-change"
        case entityChange = "entity-change"
        case deployStatus = "deploy-status"
    }

    let log: EventLog

    @discardableResult
    func append(_ tx: Transaction, game: String, _ kind: Kind, _ details: [String: String]) throws -> Int64 {
        let payload = Croupier_Staging_V1_StagingEvent.with { $0.details = details }.serializedBytes()
        return try log.append(tx, stream: game, type: kind.rawValue, payload: payload)
    }

    static func decode(_ e: StoredEvent) -> Croupier_Staging_V1_StagingEvent {
        var m = (try? Croupier_Staging_V1_StagingEvent(serializedBytes: e.payload)) ?? .init()
        m.offset = e.offset
        m.gameSlug = e.stream
        m.type = e.type
        m.createdAtMs = e.createdAtMillis
        return m
    }
}
