-- A batch counts its stopped jobs beside the successful and failed ones, and remembers how it
-- was cancelled: 'now' stops its running jobs too, 'after_current' lets the running jobs finish
-- and starts no new one (its queued jobs are stopped in the transaction that records the
-- cancel, so none starts after it). A 'now' after an 'after_current' escalates; never back.
BEGIN;
SET LOCAL client_min_messages = warning;

ALTER TABLE training_batches
    ADD COLUMN IF NOT EXISTS stopped integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS cancel_mode text CHECK (cancel_mode IN ('now', 'after_current'));

-- Batches that ended before this migration: their stopped jobs, counted once.
UPDATE training_batches b
   SET stopped = (SELECT count(*) FROM training_jobs j WHERE j.batch_id = b.id AND j.status = 'stopped')
 WHERE b.status <> 'running' AND b.stopped = 0;
UPDATE training_batches SET cancel_mode = 'now' WHERE cancel_requested AND cancel_mode IS NULL;

INSERT INTO schema_migrations (name) VALUES ('007_batch_stops') ON CONFLICT (name) DO NOTHING;

COMMIT;
