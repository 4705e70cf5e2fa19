-- What training produces: per-evaluation metrics, log lines, trained configurations.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS training_metrics (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL REFERENCES training_jobs (id) ON DELETE CASCADE,
    iteration    integer NOT NULL,
    score        double precision,
    valid        boolean NOT NULL DEFAULT true,
    params       jsonb NOT NULL,
    metrics      jsonb NOT NULL DEFAULT '{}',
    duration_ms  double precision,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, iteration)
);

CREATE TABLE IF NOT EXISTS training_logs (
    id       bigserial PRIMARY KEY,
    job_id   bigint NOT NULL REFERENCES training_jobs (id) ON DELETE CASCADE,
    ts       timestamptz NOT NULL DEFAULT now(),
    level    text NOT NULL DEFAULT 'INFO',
    message  text NOT NULL
);
CREATE INDEX IF NOT EXISTS training_logs_job_idx ON training_logs (job_id, id);

-- Trained configurations outlive the jobs that made them (`trad cleanup` keeps them).
CREATE TABLE IF NOT EXISTS trained_configurations (
    id               bigserial PRIMARY KEY,
    strategy         text NOT NULL,
    symbol           text NOT NULL,
    timeframe        text NOT NULL,
    params           jsonb NOT NULL,
    objective        text NOT NULL,
    score            double precision,
    metrics          jsonb NOT NULL DEFAULT '{}',
    validation       jsonb,
    training_job_id  bigint REFERENCES training_jobs (id) ON DELETE SET NULL,
    data_start       timestamptz,
    data_end         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS trained_configurations_lookup_idx
    ON trained_configurations (symbol, timeframe, strategy, created_at DESC);
CREATE INDEX IF NOT EXISTS trained_configurations_job_idx
    ON trained_configurations (training_job_id);

INSERT INTO schema_migrations (name) VALUES ('002_results') ON CONFLICT (name) DO NOTHING;

COMMIT;
