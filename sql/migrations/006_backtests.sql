-- Stored backtests: the winner of every training job, saved with its trained configuration
-- (it outlives the job), and the ad-hoc backtests people ask for (kept a day).
-- Curves are downsampled (at most 2,000 points, extremes kept); trades are rows.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS backtests (
    id                        bigserial PRIMARY KEY,
    kind                      text NOT NULL CHECK (kind IN ('trained', 'adhoc')),
    trained_configuration_id  bigint REFERENCES trained_configurations (id) ON DELETE CASCADE,
    training_job_id           bigint,  -- no foreign key: the backtest outlives its job
    strategy                  text NOT NULL,
    symbol                    text NOT NULL,
    timeframe                 text NOT NULL,
    params                    jsonb NOT NULL,
    objective                 text NOT NULL,
    score                     double precision,
    settings                  jsonb NOT NULL DEFAULT '{}',
    data_start                timestamptz NOT NULL,
    data_end                  timestamptz NOT NULL,
    candles                   integer NOT NULL,
    metrics                   jsonb NOT NULL DEFAULT '{}',
    equity                    jsonb NOT NULL,   -- {time, equity, drawdown}: ≤ 2,000 points
    overview                  jsonb NOT NULL,   -- the candles in ≤ 2,000 bars
    folds                     jsonb NOT NULL DEFAULT '[]',
    trades_stored             integer NOT NULL DEFAULT 0,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS backtests_job_idx ON backtests (training_job_id, id DESC);
CREATE INDEX IF NOT EXISTS backtests_configuration_idx ON backtests (trained_configuration_id);
CREATE INDEX IF NOT EXISTS backtests_adhoc_idx ON backtests (created_at) WHERE kind = 'adhoc';

-- fold 0: the backtest over the whole range; fold n: the out-of-sample window of walk-forward fold n.
CREATE TABLE IF NOT EXISTS backtest_trades (
    backtest_id    bigint NOT NULL REFERENCES backtests (id) ON DELETE CASCADE,
    fold           integer NOT NULL,
    seq            integer NOT NULL,
    entry_time     timestamptz NOT NULL,
    exit_time      timestamptz NOT NULL,
    entry_price    double precision NOT NULL,
    exit_price     double precision NOT NULL,
    units          double precision NOT NULL,
    pnl            double precision NOT NULL,
    return_pct     double precision NOT NULL,
    exit_reason    smallint NOT NULL,  -- 0 stop, 1 target, 2 signal, 3 max_hold, 4 end (trad.backtest.simulation)
    candles_held   integer NOT NULL,
    PRIMARY KEY (backtest_id, fold, seq)
);
CREATE INDEX IF NOT EXISTS backtest_trades_time_idx ON backtest_trades (backtest_id, fold, exit_time);

INSERT INTO schema_migrations (name) VALUES ('006_backtests') ON CONFLICT (name) DO NOTHING;

COMMIT;
