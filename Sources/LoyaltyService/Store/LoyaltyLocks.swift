/// The keys loyalty writes lock on PostgreSQL (`Database.PostgresWrites.keyLocked`),
/// one per invariant a write decides on:
///
/// - `slip:` a slip's start, completion and recovery happen once, in order;
/// - `reward:` an idempotency key is issued once (a retry finds the entry);
/// - `staff:` a staff member's rate-limit count sees every reward before it;
/// - `player:` a balance is read and updated with no entry in between
///   (every ledger append takes it, after the keys above).
///
/// Order, so no two writes wait for each other crosswise: the keys a write
/// names up front are taken sorted, and `player:` always last, inside the
/// transaction (a slip's player is known only once the slip is read).
enum LoyaltyLocks {
    static func slip(_ id: String) -> String { "slip:" + id }
    static func reward(_ idempotencyKey: String) -> String { "reward:" + idempotencyKey }
    static func staff(_ id: String) -> String { "staff:" + id }
    static func player(_ id: String) -> String { "player:" + id }
}
