import Storage

/// The Games database: the games' tables, cleanup operations with their
/// integration messages and version rows, and the runtime side (games,
/// stats, evaluations, the runtime event stream and its consumer offset).
enum GamesSchema {
    static let migrations: [Migration] = EventLog.migrations + OffsetStore.migrations + [
        Migration("games", 1, "tables, operations, versions", """
            CREATE TABLE game_tables (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                currency TEXT NOT NULL,
                active INTEGER NOT NULL,
                archived_at INTEGER,
                in_play INTEGER NOT NULL DEFAULT 0,
                updated_at INTEGER NOT NULL
            );
            CREATE TABLE operations (
                operation_id TEXT PRIMARY KEY,
                request_id TEXT NOT NULL UNIQUE,
                action TEXT NOT NULL CHECK (action IN ('DELETE', 'ARCHIVE')),
                status TEXT NOT NULL CHECK (status IN ('RECEIVED', 'IN_PROGRESS', 'DEFERRED', 'PROCESSED', 'FAILED')),
                archived_at INTEGER NOT NULL,
                requested_ids TEXT NOT NULL,
                affected_ids TEXT NOT NULL DEFAULT '',
                missing_ids TEXT NOT NULL DEFAULT '',
                next_batch INTEGER NOT NULL DEFAULT 0,
                failure TEXT NOT NULL DEFAULT '',
                purge_failures TEXT NOT NULL DEFAULT '',
                purged INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            );
            CREATE INDEX operations_status ON operations (status);
            -- What the caller sent, kept until the cleaner removes it (never while its operation is DEFERRED).
            CREATE TABLE integration_messages (
                message_id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id TEXT NOT NULL UNIQUE,
                operation_id TEXT NOT NULL,
                body BLOB NOT NULL,
                archived_at INTEGER NOT NULL,
                received_at INTEGER NOT NULL
            );
            CREATE INDEX integration_messages_received ON integration_messages (received_at);
            CREATE TABLE versions (
                version_id INTEGER PRIMARY KEY AUTOINCREMENT,
                table_id INTEGER NOT NULL,
                event TEXT NOT NULL,
                actor TEXT NOT NULL,
                operation_id TEXT,
                before_json TEXT NOT NULL,
                after_json TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX versions_table ON versions (table_id, version_id);
            CREATE INDEX versions_operation ON versions (operation_id, version_id);
            """),
        Migration("games", 2, "operations name their run and caller; tables kept by an ARCHIVE operation", """
            ALTER TABLE operations ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
            ALTER TABLE operations ADD COLUMN principal TEXT NOT NULL DEFAULT '';
            ALTER TABLE operations ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
            CREATE INDEX operations_run ON operations (run_id, action, status);
            ALTER TABLE versions ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
            -- The ARCHIVE operation that archived a table with traffic: a purge never deletes it.
            ALTER TABLE game_tables ADD COLUMN kept_by TEXT;
            """),
        Migration("games", 3, "operations numbered in the order they arrived (pages need no rowid)", """
            ALTER TABLE operations ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
            UPDATE operations SET seq = (SELECT count(*) FROM operations o WHERE o.created_at < operations.created_at
                OR (o.created_at = operations.created_at AND o.operation_id <= operations.operation_id));
            CREATE INDEX operations_seq ON operations (seq);
            """),
        Migration("games", 4, "an operation runs under its runner's lease (replicas share the database)", """
            ALTER TABLE operations ADD COLUMN runner TEXT NOT NULL DEFAULT '';
            ALTER TABLE operations ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
            """),
        Migration("games", 5, "an operation keeps the W3C traceparent of the call that made it (its worker runs under it)", """
            ALTER TABLE operations ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
            """),
        Migration("runtime", 1, "games, stats, evaluations", """
            CREATE TABLE games (
                game_id TEXT PRIMARY KEY,
                status TEXT NOT NULL CHECK (status IN ('RUNNING', 'PAUSED', 'FINISHED')),
                current_turn INTEGER NOT NULL DEFAULT 0,
                runtime_status TEXT NOT NULL DEFAULT '',
                engine_health_summary TEXT NOT NULL DEFAULT '',
                snapshot_updated_at INTEGER NOT NULL DEFAULT 0,
                finished_at INTEGER,
                registered_at INTEGER NOT NULL
            );
            CREATE TABLE player_stats (
                game_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                initial_planets INTEGER NOT NULL,
                initial_population INTEGER NOT NULL,
                initial_ships_built INTEGER NOT NULL,
                max_planets INTEGER NOT NULL,
                max_population INTEGER NOT NULL,
                max_ships_built INTEGER NOT NULL,
                -- The latest observation: a finished game's standings rank by these.
                last_planets INTEGER NOT NULL,
                last_population INTEGER NOT NULL,
                last_ships_built INTEGER NOT NULL,
                PRIMARY KEY (game_id, user_id)
            ) WITHOUT ROWID;
            -- The replay guard of capability evaluation: one row per evaluated game.
            CREATE TABLE evaluations (
                game_id TEXT PRIMARY KEY,
                finished_at INTEGER NOT NULL,
                evaluated_at INTEGER NOT NULL
            );
            CREATE TABLE standings (
                game_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                rank INTEGER NOT NULL,
                planets INTEGER NOT NULL,
                population INTEGER NOT NULL,
                ships_built INTEGER NOT NULL,
                PRIMARY KEY (game_id, user_id)
            ) WITHOUT ROWID;
            """),
        Migration("runtime", 2, "the consumer's skipped count survives restarts", """
            CREATE TABLE consumer_counters (
                consumer TEXT PRIMARY KEY,
                skipped INTEGER NOT NULL
            );
            """),
    ]
}
