-- Training jobs, batches and candles; the version sequence and the NOTIFY trigger.
-- Idempotent: run it as often as you like with `psql -v ON_ERROR_STOP=1 -f`.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS candles (
    symbol     text             NOT NULL,
    timeframe  text             NOT NULL,
    ts         timestamptz      NOT NULL,
    open       double precision NOT NULL CHECK (open > 0),
    high       double precision NOT NULL CHECK (high > 0),
    low        double precision NOT NULL CHECK (low > 0),
    close      double precision NOT NULL CHECK (close > 0),
    volume     double precision NOT NULL CHECK (volume >= 0),
    PRIMARY KEY (symbol, timeframe, ts),
    CHECK (low <= high)
);

CREATE TABLE IF NOT EXISTS training_batches (
    id                 bigserial PRIMARY KEY,
    status             text    NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    symbols            text[]  NOT NULL,
    template           jsonb   NOT NULL DEFAULT '{}',
    force              boolean NOT NULL DEFAULT false,
    cancel_requested   boolean NOT NULL DEFAULT false,
    current_symbol     text,
    completed_symbols  integer NOT NULL DEFAULT 0,
    successful         integer NOT NULL DEFAULT 0,
    failed             integer NOT NULL DEFAULT 0,
    skipped            integer NOT NULL DEFAULT 0,
    message            text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz
);

-- One sequence numbers every change of every job row: the SSE event id.
CREATE SEQUENCE IF NOT EXISTS training_jobs_version_seq;

CREATE TABLE IF NOT EXISTS training_jobs (
    id                    bigserial PRIMARY KEY,
    job_name              text NOT NULL CHECK (char_length(job_name) BETWEEN 1 AND 200),
    status                text NOT NULL DEFAULT 'queued'
                          CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'stopped')),
    strategy              text NOT NULL,
    symbol                text NOT NULL,
    timeframe             text NOT NULL,
    optimizer             text NOT NULL CHECK (optimizer IN ('grid', 'random', 'bayesian')),
    objective             text NOT NULL DEFAULT 'sharpe',
    config                jsonb NOT NULL DEFAULT '{}',
    batch_id              bigint REFERENCES training_batches (id) ON DELETE SET NULL,
    rq_job_id             text,
    progress              double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_stage         text,
    step_number           integer NOT NULL DEFAULT 0,
    total_steps           integer NOT NULL DEFAULT 4,
    step_percentage       double precision NOT NULL DEFAULT 0,
    step_details          jsonb NOT NULL DEFAULT '{}',
    current_episode       integer NOT NULL DEFAULT 0,
    total_episodes        integer NOT NULL DEFAULT 0,
    current_score         double precision,
    best_score            double precision,
    best_params           jsonb,
    current_reward        double precision,
    current_loss          double precision,
    candles_processed     bigint NOT NULL DEFAULT 0,
    total_candles         bigint NOT NULL DEFAULT 0,
    backtest_stage        text,
    eta_seconds           double precision,
    created_at            timestamptz NOT NULL DEFAULT now(),
    started_at            timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,
    estimated_completion  timestamptz,
    cancel_requested      boolean NOT NULL DEFAULT false,
    error_message         text,
    result                jsonb,
    worker_name           text,
    heartbeat_at          timestamptz,
    attempts              integer NOT NULL DEFAULT 0,
    version               bigint NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS training_jobs_created_idx ON training_jobs (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS training_jobs_status_idx ON training_jobs (status, created_at DESC);
CREATE INDEX IF NOT EXISTS training_jobs_version_idx ON training_jobs (version);
CREATE INDEX IF NOT EXISTS training_jobs_batch_idx ON training_jobs (batch_id) WHERE batch_id IS NOT NULL;

-- Deleted jobs leave a tombstone so a reconnecting stream can replay the deletion.
CREATE TABLE IF NOT EXISTS training_job_deletions (
    job_id      bigint PRIMARY KEY,
    version     bigint NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS training_job_deletions_version_idx ON training_job_deletions (version);

-- Every real change takes the next version and a fresh updated_at. An UPDATE that
-- changes nothing but heartbeat_at is not a change a client needs to see.
CREATE OR REPLACE FUNCTION training_jobs_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'heartbeat_at' - 'updated_at' - 'version')
         = (to_jsonb(OLD) - 'heartbeat_at' - 'updated_at' - 'version') THEN
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
        RETURN NEW;
    END IF;
    NEW.version := nextval('training_jobs_version_seq');
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER training_jobs_version
    BEFORE INSERT OR UPDATE ON training_jobs
    FOR EACH ROW EXECUTE FUNCTION training_jobs_bump_version();

-- NOTIFY carries ids only (payloads must stay under 8,000 bytes); listeners read the row.
CREATE OR REPLACE FUNCTION training_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    deleted_version bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        deleted_version := nextval('training_jobs_version_seq');
        INSERT INTO training_job_deletions (job_id, version) VALUES (OLD.id, deleted_version)
            ON CONFLICT (job_id) DO UPDATE SET version = EXCLUDED.version, deleted_at = now();
        PERFORM pg_notify('training_jobs', json_build_object(
            'op', 'delete', 'id', OLD.id, 'version', deleted_version)::text);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NEW;
    END IF;
    PERFORM pg_notify('training_jobs', json_build_object(
        'op', lower(TG_OP), 'id', NEW.id, 'version', NEW.version)::text);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER training_jobs_notify
    AFTER INSERT OR UPDATE OR DELETE ON training_jobs
    FOR EACH ROW EXECUTE FUNCTION training_jobs_notify();

INSERT INTO schema_migrations (name) VALUES ('001_jobs') ON CONFLICT (name) DO NOTHING;

COMMIT;
