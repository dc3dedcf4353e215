import Storage

/// The staging database: import runs and their uploads, staging entities
/// with their overrides and images, production, the latest diff per game,
/// locks, the event log (one stream per game) and the diff queue.
///
/// Entity fields are stored as `FieldMap` protobuf bytes: the encoding is
/// deterministic (keys sorted), so equal maps are equal blobs and the diff
/// compares bytes before it decodes anything.
enum StagingSchema {
    static let migrations: [Migration] = EventLog.migrations + DurableQueue.migrations + [
        Migration("staging", 1, "runs, entities, production, diffs, locks", """
            CREATE TABLE import_runs (
                run_id TEXT PRIMARY KEY,
                game_slug TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('RECEIVING', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
                source TEXT NOT NULL DEFAULT '',
                entities_received INTEGER NOT NULL DEFAULT 0,
                entities_merged INTEGER NOT NULL DEFAULT 0,
                entities_removed INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL,
                started_at INTEGER,
                finished_at INTEGER,
                error TEXT NOT NULL DEFAULT '',
                diff_message_id INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX import_runs_game ON import_runs (game_slug, status);
            CREATE INDEX import_runs_status ON import_runs (status, created_at);
            -- The durable upload of a run, in arrival order.
            CREATE TABLE import_data (
                run_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                fields BLOB NOT NULL,
                PRIMARY KEY (run_id, seq)
            ) WITHOUT ROWID;

            CREATE TABLE staging_entities (
                game_slug TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                imported_fields BLOB NOT NULL,
                fields BLOB NOT NULL,
                origin TEXT NOT NULL CHECK (origin IN ('import', 'manual')),
                removed INTEGER NOT NULL DEFAULT 0,
                last_run_id TEXT NOT NULL DEFAULT '',
                updated_at INTEGER NOT NULL,
                -- A card's fields["expansion"], kept beside the blob for the impact counts.
                expansion TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (game_slug, entity_type, slug)
            ) WITHOUT ROWID;
            CREATE INDEX staging_entities_expansion ON staging_entities (game_slug, entity_type, expansion, removed);
            CREATE TABLE overrides (
                game_slug TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                field TEXT NOT NULL,
                value TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (game_slug, entity_type, slug, field)
            ) WITHOUT ROWID;
            CREATE TABLE images (
                sha256 TEXT PRIMARY KEY,
                content_type TEXT NOT NULL,
                data BLOB NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE TABLE production_entities (
                game_slug TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                fields BLOB NOT NULL,
                expansion TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (game_slug, entity_type, slug)
            ) WITHOUT ROWID;

            CREATE INDEX production_entities_expansion ON production_entities (game_slug, entity_type, expansion);
            CREATE TABLE diffs (
                game_slug TEXT PRIMARY KEY,
                trigger TEXT NOT NULL,
                import_run_id TEXT NOT NULL DEFAULT '',
                generated_at INTEGER NOT NULL,
                duration_ms INTEGER NOT NULL,
                impact BLOB NOT NULL
            );
            CREATE TABLE diff_entries (
                game_slug TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                change TEXT NOT NULL CHECK (change IN ('ADDED', 'CHANGED', 'REMOVED')),
                fields BLOB NOT NULL,
                PRIMARY KEY (game_slug, entity_type, slug)
            ) WITHOUT ROWID;
            -- Diff requests already produced: a redelivered message is not produced twice.
            CREATE TABLE diff_requests_done (
                message_id INTEGER PRIMARY KEY,
                done_at INTEGER NOT NULL
            );

            CREATE TABLE locks (
                game_slug TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('import', 'diff')),
                holder TEXT NOT NULL,
                since INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                progress TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (game_slug, kind)
            ) WITHOUT ROWID;
            """),
        Migration("staging", 2, "override sequence numbers (a merge reads new overrides in each page's transaction)", """
            ALTER TABLE overrides ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
            CREATE INDEX overrides_seq ON overrides (game_slug, seq);
            """),
        Migration("staging", 3, "deploys, and the pending copy a deploy swaps into production in one transaction", """
            CREATE TABLE deploys (
                deploy_id TEXT PRIMARY KEY,
                game_slug TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
                started_at INTEGER NOT NULL,
                finished_at INTEGER,
                total INTEGER NOT NULL DEFAULT 0,
                copied INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT ''
            );
            CREATE INDEX deploys_state ON deploys (state);
            CREATE TABLE production_pending (
                deploy_id TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                slug TEXT NOT NULL,
                fields BLOB NOT NULL,
                expansion TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (deploy_id, entity_type, slug)
            ) WITHOUT ROWID;
            """),
        Migration("staging", 4, "an import run keeps the W3C traceparent of the call that uploaded it (its merge and diff log under it)", """
            ALTER TABLE import_runs ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
            """),
        Migration("staging", 5, "an import run keeps the correlation id of the call that uploaded it", """
            ALTER TABLE import_runs ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';
            """),
    ]
}
