import Storage
import Wire

/// Something staff or the player should hear about.
public struct Alert: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case manualRewardFrequency = "MANUAL_REWARD_FREQUENCY"
        case tierUpgrade = "TIER_UPGRADE"
        case staffIDMismatch = "STAFF_ID_MISMATCH"
    }

    public var offset: Int64 = 0
    public var kind: Kind
    public var playerID: String
    public var staffID: String
    public var message: String
    public var tierBefore: Tier? = nil
    public var tierAfter: Tier? = nil
    public var correlationID: String
    public var createdAtMillis: Int64 = 0
}

/// Alerts and notifications live in the service's event log (stream
/// `alerts`), written in the transaction of the change they report, so an
/// alert exists exactly when its cause committed and `WatchAlerts` can
/// resume from any offset without gaps or duplicates.
public struct AlertLog: Sendable {
    static let stream = "alerts"
    let events: EventLog

    func append(_ tx: Transaction, _ alert: Alert) throws {
        try events.append(tx, stream: Self.stream, type: alert.kind.rawValue, payload: AlertPayload.encode(alert))
    }

    /// Alerts after `offset`, oldest first.
    /// Alerts kept, by kind.
    public func countsByKind() async throws -> [String: Int] { try await events.countsByType(stream: Self.stream) }

    public func read(after offset: Int64, limit: Int) async throws -> [Alert] {
        try await events.read(after: offset, limit: limit, stream: Self.stream).map(AlertPayload.decode)
    }

    /// Alerts after `offset`, then new ones as they commit.
    public func follow(after offset: Int64) -> AsyncThrowingMapSequence<EventSubscription, Alert> {
        events.subscribe(after: offset, stream: Self.stream).map(AlertPayload.decode)
    }
}

/// The stored form of an alert is the API's `Alert` message.
enum AlertPayload {
    static func encode(_ a: Alert) -> [UInt8] {
        Croupier_Loyalty_V1_Alert.with {
            $0.kind = ProtoMapping.alertKind(a.kind)
            $0.playerId = a.playerID
            $0.staffId = a.staffID
            $0.message = a.message
            $0.tierBefore = ProtoMapping.tier(a.tierBefore)
            $0.tierAfter = ProtoMapping.tier(a.tierAfter)
            $0.correlationId = a.correlationID
        }.serializedBytes()
    }

    static func decode(_ event: StoredEvent) throws -> Alert {
        let m = try Croupier_Loyalty_V1_Alert(serializedBytes: event.payload)
        return Alert(
            offset: event.offset, kind: Alert.Kind(rawValue: event.type) ?? .manualRewardFrequency, playerID: m.playerId,
            staffID: m.staffId, message: m.message, tierBefore: ProtoMapping.tier(m.tierBefore),
            tierAfter: ProtoMapping.tier(m.tierAfter), correlationID: m.correlationId, createdAtMillis: event.createdAtMillis)
    }
}
