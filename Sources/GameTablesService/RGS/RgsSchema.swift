import Storage

/// The RGS database: the client-area estate and the cleanup runs, with the
/// outbox of slices still owed to Games.
enum RgsSchema {
    static let migrations: [Migration] = [
        Migration("rgs", 1, "estate and cleanup runs", """
            CREATE TABLE environments (
                environment_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                required_currencies TEXT NOT NULL
            );
            CREATE TABLE servers (
                server_id TEXT PRIMARY KEY,
                environment_id TEXT NOT NULL,
                active INTEGER NOT NULL
            );
            CREATE INDEX servers_environment ON servers (environment_id, server_id);
            CREATE TABLE rgs_tables (
                table_id TEXT PRIMARY KEY,
                server_id TEXT NOT NULL,
                bo_id INTEGER NOT NULL,
                currency TEXT NOT NULL,
                active INTEGER NOT NULL,
                archived_at INTEGER
            );
            CREATE INDEX rgs_tables_server ON rgs_tables (server_id, table_id);
            CREATE TABLE ggr_aggregates (
                table_id TEXT NOT NULL,
                period TEXT NOT NULL,
                rounds INTEGER NOT NULL,
                ggr REAL NOT NULL,
                PRIMARY KEY (table_id, period)
            ) WITHOUT ROWID;

            CREATE TABLE cleanup_runs (
                run_id TEXT PRIMARY KEY,
                archived_at INTEGER NOT NULL,
                started_at INTEGER NOT NULL,
                skipped_environments TEXT NOT NULL
            );
            -- One job per (run, server); an environment's jobs run one after another in `position` order.
            CREATE TABLE cleanup_jobs (
                run_id TEXT NOT NULL,
                environment_id TEXT NOT NULL,
                server_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('PENDING', 'SENDING', 'DONE', 'FAILED', 'NOTHING_TO_DO')),
                to_delete INTEGER NOT NULL DEFAULT 0,
                to_archive INTEGER NOT NULL DEFAULT 0,
                failure TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (run_id, server_id)
            );
            CREATE INDEX cleanup_jobs_pending ON cleanup_jobs (state, run_id, environment_id, position);
            -- The outbox: written in the job's transaction, delivered until Games acknowledges.
            CREATE TABLE cleanup_slices (
                request_id TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                server_id TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('DELETE', 'ARCHIVE')),
                bo_ids TEXT NOT NULL,
                archived_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('PENDING', 'ACKNOWLEDGED', 'FAILED')),
                attempts INTEGER NOT NULL DEFAULT 0,
                operation_id TEXT NOT NULL DEFAULT '',
                last_error TEXT NOT NULL DEFAULT '',
                acknowledged_at INTEGER
            );
            CREATE INDEX cleanup_slices_state ON cleanup_slices (state, request_id);
            CREATE INDEX cleanup_slices_job ON cleanup_slices (run_id, server_id);
            """),
        Migration("rgs", 2, "RGS applies a slice after Games does; runs name their caller", """
            ALTER TABLE cleanup_runs ADD COLUMN principal TEXT NOT NULL DEFAULT '';
            ALTER TABLE cleanup_runs ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
            -- The RGS tables a slice settles: "bo_id table_id" lines.
            ALTER TABLE cleanup_slices ADD COLUMN tables TEXT NOT NULL DEFAULT '';
            -- Games' operation as RGS last learned it.
            ALTER TABLE cleanup_slices ADD COLUMN games_status TEXT NOT NULL DEFAULT '';
            ALTER TABLE cleanup_slices ADD COLUMN missing_ids TEXT NOT NULL DEFAULT '';
            ALTER TABLE cleanup_slices ADD COLUMN failure TEXT NOT NULL DEFAULT '';
            -- AWAITING Games' final answer, APPLIED (RGS tables changed to match), FAILED (Games failed it).
            ALTER TABLE cleanup_slices ADD COLUMN outcome TEXT NOT NULL DEFAULT 'AWAITING';
            -- Slices acknowledged before this migration were applied locally when they were queued.
            UPDATE cleanup_slices SET outcome = 'APPLIED' WHERE state = 'ACKNOWLEDGED';
            CREATE INDEX cleanup_slices_outcome ON cleanup_slices (state, outcome, request_id);
            """),
        Migration("rgs", 3, "a run keeps the W3C traceparent of its kickoff (its slices carry it to Games)", """
            ALTER TABLE cleanup_runs ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
            """),
    ]
}
