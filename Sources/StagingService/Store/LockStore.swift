import Storage
import Synchronization
import Wire

/// Import and diff locks: leases with an expiry, renewed by heartbeats, so a
/// holder that dies cannot block its game for longer than one lease. Every
/// change writes a `lock-change` event in the same transaction (this is the
/// only writer of that event type): `acquired` once per holder (taking a lock
/// it already holds is a renewal, not news), `progress` (throttled by the
/// caller), `released`, and `expired` when a lease runs out because its
/// holder died (`expireStale`, run by the lease keeper, or a new holder
/// taking the lock over).
public struct LockStore: Sendable {
    public enum Kind: String, Sendable { case importLock = "import", diff = "diff" }

    let database: Database
    let events: StagingEvents
    let clock: any StorageClock
    let leaseMillis: Int64

    /// Takes the lock for `holder` if it is free, expired, or already its own; false otherwise.
    func acquire(_ tx: Transaction, game: String, _ kind: Kind, holder: String) throws -> Bool {
        let now = clock.nowMillis()
        let current = try tx.queryFirst(
            "SELECT holder, expires_at FROM locks WHERE game_slug = ? AND kind = ?", [game, kind.rawValue],
            { (holder: $0.string(0), expires: $0.int64(1)) })
        if let current, current.holder != holder, current.expires > now { return false }
        if let current, current.holder == holder, current.expires > now {
            // Already this holder's: a renewal, not a new acquisition.
            try tx.execute(
                "UPDATE locks SET expires_at = ? WHERE game_slug = ? AND kind = ? AND holder = ?", [now + leaseMillis, game, kind.rawValue, holder])
            return true
        }
        if let current, current.expires <= now {
            try events.append(tx, game: game, .lockChange, ["kind": kind.rawValue, "holder": current.holder, "state": "expired"])
        }
        try tx.execute(
            """
            INSERT INTO locks (game_slug, kind, holder, since, expires_at, progress) VALUES (?, ?, ?, ?, ?, '')
            ON CONFLICT (game_slug, kind) DO UPDATE SET holder = excluded.holder, since = excluded.since,
                expires_at = excluded.expires_at, progress = ''
            """, [game, kind.rawValue, holder, now, now + leaseMillis])
        try events.append(tx, game: game, .lockChange, ["kind": kind.rawValue, "holder": holder, "state": "acquired"])
        return true
    }

    /// The current holder of an unexpired lock.
    func holder(_ tx: Transaction, game: String, _ kind: Kind) throws -> String? {
        try tx.queryFirst(
            "SELECT holder FROM locks WHERE game_slug = ? AND kind = ? AND expires_at > ?", [game, kind.rawValue, clock.nowMillis()],
            { $0.string(0) })
    }

    func release(_ tx: Transaction, game: String, _ kind: Kind, holder: String) throws {
        let removed = try tx.execute(
            "DELETE FROM locks WHERE game_slug = ? AND kind = ? AND holder = ?", [game, kind.rawValue, holder])
        if removed > 0 {
            try events.append(tx, game: game, .lockChange, ["kind": kind.rawValue, "holder": holder, "state": "released"])
        }
    }

    func release(game: String, _ kind: Kind, holder: String) async throws {
        try await database.write { tx in try self.release(tx, game: game, kind, holder: holder) }
    }

    /// Extends the lease; with `progress`, also records it and emits a
    /// `lock-change` event. False when the lock is no longer this holder's.
    @discardableResult
    func heartbeat(game: String, _ kind: Kind, holder: String, progress: String? = nil) async throws -> Bool {
        try await database.write { tx in try self.renew(tx, game: game, kind, holder: holder, progress: progress) }
    }

    /// `heartbeat` inside the caller's transaction: a job reports its
    /// progress in the transaction of the work it reports, at no extra commit.
    @discardableResult
    func renew(_ tx: Transaction, game: String, _ kind: Kind, holder: String, progress: String?) throws -> Bool {
        let changed = try tx.execute(
            "UPDATE locks SET expires_at = ?, progress = coalesce(?, progress) WHERE game_slug = ? AND kind = ? AND holder = ?",
            [clock.nowMillis() + leaseMillis, progress, game, kind.rawValue, holder])
        if changed > 0, let progress {
            try events.append(tx, game: game, .lockChange, ["kind": kind.rawValue, "holder": holder, "state": "progress", "progress": progress])
        }
        return changed > 0
    }

    /// Leases that ran out (their holder died, or stalled past its lease) are
    /// removed, each with an `expired` event. Reads first: no write when there are none.
    @discardableResult
    func expireStale() async throws -> Int {
        let now = clock.nowMillis()
        let stale = try await database.read { db in
            try db.query("SELECT 1 FROM locks WHERE expires_at <= ? LIMIT 1", [now], { _ in true })
        }
        guard !stale.isEmpty else { return 0 }
        let events = self.events
        return try await database.write { tx in
            let expired = try tx.query(
                "SELECT game_slug, kind, holder FROM locks WHERE expires_at <= ?", [now], { ($0.string(0), $0.string(1), $0.string(2)) })
            for (game, kind, holder) in expired {
                try tx.execute("DELETE FROM locks WHERE game_slug = ? AND kind = ? AND holder = ? AND expires_at <= ?", [game, kind, holder, now])
                try events.append(tx, game: game, .lockChange, ["kind": kind, "holder": holder, "state": "expired"])
            }
            return expired.count
        }
    }

    public func locks(game: String) async throws -> [Croupier_Staging_V1_Lock] {
        let now = clock.nowMillis()
        return try await database.read { db in
            try db.query(
                "SELECT kind, holder, since, expires_at, progress FROM locks WHERE game_slug = ? AND expires_at > ? ORDER BY kind",
                [game, now]
            ) { r in
                .with {
                    $0.gameSlug = game
                    $0.kind = r.string(0)
                    $0.holder = r.string(1)
                    $0.sinceMs = r.int64(2)
                    $0.expiresAtMs = r.int64(3)
                    $0.progress = r.string(4)
                }
            }
        }
    }
}

/// Renews the leases this process holds until they are released, every
/// third of the lease, and expires the leases whose holders died;
/// progress reports are throttled by their writers. A lease found released
/// or taken by another holder is no longer kept (an upload's lease is kept
/// here until its run is merged, maybe by another replica; without this its
/// entry stayed, renewed in vain every turn, for the life of the process).
final class LeaseKeeper: Sendable {
    struct Held: Hashable { let game: String; let kind: LockStore.Kind; let holder: String }

    let locks: LockStore
    private let held = Mutex<Set<Held>>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(locks: LockStore) { self.locks = locks }

    func hold(_ h: Held) { _ = held.withLock { $0.insert(h) } }
    func drop(_ h: Held) { _ = held.withLock { $0.remove(h) } }
    var heldCount: Int { held.withLock { $0.count } }

    func start() {
        let interval = Duration.milliseconds(max(10, locks.leaseMillis / 3))
        let t = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                for h in held.withLock({ Array($0) }) {
                    if (try? await locks.heartbeat(game: h.game, h.kind, holder: h.holder)) == false { drop(h) }
                }
                // Leases of holders that died (in this process's past life or elsewhere) end with an event.
                _ = try? await locks.expireStale()
            }
        }
        task.withLock { $0 = t }
    }

    func stop() { task.withLock { $0?.cancel() } }
}
