import Storage

/// The loyalty database: slips, accounts, the ledger, alert bookkeeping and
/// the event log that carries alerts.
///
/// The ledger is the truth; `player_loyalty` is a running total kept in the
/// same transaction as each ledger row (VerifyBalance checks one against the
/// other). The unique idempotency key is what makes retries safe: a second
/// insert with the same key cannot commit.
enum LoyaltySchema {
    static let migrations: [Migration] = EventLog.migrations + [
        Migration("loyalty", 1, "slips, accounts, ledger", """
            CREATE TABLE rating_slips (
                slip_id TEXT PRIMARY KEY,
                player_id TEXT NOT NULL,
                visit_id TEXT NOT NULL,
                table_id TEXT NOT NULL,
                house_edge_percent REAL NOT NULL,
                decisions_per_hour REAL NOT NULL,
                points_per_theoretical_win REAL NOT NULL,
                average_bet REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('OPEN', 'CLOSED')),
                started_at INTEGER NOT NULL,
                ended_at INTEGER,
                duration_seconds INTEGER,
                correlation_id TEXT
            );
            CREATE INDEX rating_slips_player ON rating_slips (player_id, started_at);

            CREATE TABLE player_loyalty (
                player_id TEXT PRIMARY KEY,
                balance INTEGER NOT NULL CHECK (balance >= 0),
                lifetime_points INTEGER NOT NULL CHECK (lifetime_points >= 0),
                tier TEXT NOT NULL,
                updated_at INTEGER NOT NULL
            );

            CREATE TABLE loyalty_ledger (
                entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
                player_id TEXT NOT NULL,
                rating_slip_id TEXT,
                visit_id TEXT,
                transaction_type TEXT NOT NULL CHECK (transaction_type IN ('GAMEPLAY', 'MANUAL_BONUS', 'ADJUSTMENT')),
                points INTEGER NOT NULL,
                balance_before INTEGER NOT NULL,
                balance_after INTEGER NOT NULL CHECK (balance_after = balance_before + points AND balance_after >= 0),
                tier_before TEXT NOT NULL,
                tier_after TEXT NOT NULL,
                lifetime_before INTEGER NOT NULL,
                lifetime_after INTEGER NOT NULL,
                staff_id TEXT,
                reason TEXT,
                idempotency_key TEXT NOT NULL UNIQUE,
                correlation_id TEXT,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX loyalty_ledger_player ON loyalty_ledger (player_id, entry_id);
            CREATE INDEX loyalty_ledger_created ON loyalty_ledger (created_at);
            CREATE INDEX loyalty_ledger_staff ON loyalty_ledger (staff_id, created_at) WHERE staff_id IS NOT NULL;
            CREATE INDEX loyalty_ledger_correlation ON loyalty_ledger (correlation_id) WHERE correlation_id IS NOT NULL;
            CREATE UNIQUE INDEX loyalty_ledger_gameplay ON loyalty_ledger (rating_slip_id) WHERE transaction_type = 'GAMEPLAY';

            -- One frequency alert per (kind, subject, UTC hour).
            CREATE TABLE alert_marks (
                kind TEXT NOT NULL, subject TEXT NOT NULL, bucket INTEGER NOT NULL,
                PRIMARY KEY (kind, subject, bucket)
            ) WITHOUT ROWID;
            """),
    ]
}
