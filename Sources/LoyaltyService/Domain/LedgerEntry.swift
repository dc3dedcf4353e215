public enum TransactionType: String, Sendable {
    case gameplay = "GAMEPLAY"
    case manualBonus = "MANUAL_BONUS"
    case adjustment = "ADJUSTMENT"
}

/// One immutable ledger row: what changed a balance, by whom, and the
/// account before and after.
public struct LedgerEntry: Sendable, Equatable {
    public var entryID: Int64
    public var playerID: String
    public var ratingSlipID: String?
    public var visitID: String?
    public var type: TransactionType
    public var points: Int64
    public var before: Account
    public var after: Account
    public var staffID: String?
    public var reason: String?
    public var idempotencyKey: String
    public var correlationID: String?
    public var createdAtMillis: Int64

    public init(
        entryID: Int64, playerID: String, ratingSlipID: String?, visitID: String?, type: TransactionType, points: Int64,
        before: Account, after: Account, staffID: String?, reason: String?, idempotencyKey: String,
        correlationID: String?, createdAtMillis: Int64
    ) {
        self.entryID = entryID
        self.playerID = playerID
        self.ratingSlipID = ratingSlipID
        self.visitID = visitID
        self.type = type
        self.points = points
        self.before = before
        self.after = after
        self.staffID = staffID
        self.reason = reason
        self.idempotencyKey = idempotencyKey
        self.correlationID = correlationID
        self.createdAtMillis = createdAtMillis
    }
}

/// A ledger entry as an operation returns it: `replay` when the entry was
/// already there and the call changed nothing.
public struct Accrual: Sendable, Equatable {
    public var entry: LedgerEntry
    public var replay: Bool
}
