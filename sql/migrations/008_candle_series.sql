-- Per symbol and timeframe: how many candles are stored, the first and the last. Listing the
-- stored series (the dashboard's symbol list, `trad data list`, a job's range check, a batch's
-- plan) reads one row per series here instead of counting every candle (~0.5 s for a million).
-- Statement triggers keep it true whoever writes candles — trad's importer, psql, COPY:
-- inserted rows are added (an upsert's replaced candles change nothing), a statement that
-- deletes candles or moves them to another time or series recounts the series it touched, and
-- TRUNCATE empties it.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS candle_series (
    symbol     text        NOT NULL,
    timeframe  text        NOT NULL,
    candles    bigint      NOT NULL CHECK (candles > 0),
    first      timestamptz NOT NULL,
    last       timestamptz NOT NULL,
    PRIMARY KEY (symbol, timeframe)
);

CREATE OR REPLACE FUNCTION candle_series_recount(series_symbol text, series_timeframe text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- One recount of a series at a time, so the last to commit counted the other's candles too.
    PERFORM pg_advisory_xact_lock(hashtext('candle_series'), hashtext(series_symbol || '/' || series_timeframe));
    DELETE FROM candle_series WHERE symbol = series_symbol AND timeframe = series_timeframe;
    INSERT INTO candle_series (symbol, timeframe, candles, first, last)
    SELECT series_symbol, series_timeframe, count(*), min(ts), max(ts)
      FROM candles WHERE symbol = series_symbol AND timeframe = series_timeframe
    HAVING count(*) > 0;
END;
$$;

CREATE OR REPLACE FUNCTION candle_series_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO candle_series AS s (symbol, timeframe, candles, first, last)
    SELECT symbol, timeframe, count(*), min(ts), max(ts) FROM added_candles GROUP BY symbol, timeframe
    ON CONFLICT (symbol, timeframe) DO UPDATE
        SET candles = s.candles + EXCLUDED.candles,
            first = LEAST(s.first, EXCLUDED.first),
            last = GREATEST(s.last, EXCLUDED.last);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION candle_series_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    series record;
BEGIN
    -- Candles whose time or series changed leave one series and join another: recount both.
    -- An upsert's replaced candles keep theirs, and cost nothing here.
    FOR series IN
        SELECT o.symbol, o.timeframe FROM old_candles o
         WHERE NOT EXISTS (SELECT 1 FROM new_candles n WHERE (n.symbol, n.timeframe, n.ts) = (o.symbol, o.timeframe, o.ts))
        UNION
        SELECT n.symbol, n.timeframe FROM new_candles n
         WHERE NOT EXISTS (SELECT 1 FROM old_candles o WHERE (n.symbol, n.timeframe, n.ts) = (o.symbol, o.timeframe, o.ts))
        ORDER BY 1, 2
    LOOP
        PERFORM candle_series_recount(series.symbol, series.timeframe);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION candle_series_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    series record;
BEGIN
    FOR series IN SELECT DISTINCT symbol, timeframe FROM old_candles ORDER BY 1, 2 LOOP
        PERFORM candle_series_recount(series.symbol, series.timeframe);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION candle_series_emptied() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM candle_series;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER candle_series_insert AFTER INSERT ON candles
    REFERENCING NEW TABLE AS added_candles FOR EACH STATEMENT EXECUTE FUNCTION candle_series_added();
CREATE OR REPLACE TRIGGER candle_series_update AFTER UPDATE ON candles
    REFERENCING OLD TABLE AS old_candles NEW TABLE AS new_candles
    FOR EACH STATEMENT EXECUTE FUNCTION candle_series_moved();
CREATE OR REPLACE TRIGGER candle_series_delete AFTER DELETE ON candles
    REFERENCING OLD TABLE AS old_candles FOR EACH STATEMENT EXECUTE FUNCTION candle_series_deleted();
CREATE OR REPLACE TRIGGER candle_series_truncate AFTER TRUNCATE ON candles
    FOR EACH STATEMENT EXECUTE FUNCTION candle_series_emptied();


-- The candles stored before this migration.
INSERT INTO candle_series (symbol, timeframe, candles, first, last)
SELECT symbol, timeframe, count(*), min(ts), max(ts) FROM candles GROUP BY symbol, timeframe
ON CONFLICT (symbol, timeframe) DO UPDATE
    SET candles = EXCLUDED.candles, first = EXCLUDED.first, last = EXCLUDED.last;

INSERT INTO schema_migrations (name) VALUES ('008_candle_series') ON CONFLICT (name) DO NOTHING;

COMMIT;
