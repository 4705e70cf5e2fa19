-- Tombstones can be pruned (`trad cleanup`). The newest version pruned is kept here, so a stream
-- asked to replay from before it knows the deletions it would need are gone and answers with a
-- reset instead of an incomplete replay: "everything after version V" stays complete, or is
-- declared incomplete.
--
-- The stream's and the list's queries were checked with EXPLAIN at 20,000 jobs: the indexes of
-- 001 serve them all (version: newest changes and catch-up; status: the unfinished jobs;
-- created_at, id: list pages), so none is added here.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS training_job_deletions_pruned (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    through_version  bigint NOT NULL,
    pruned_at        timestamptz NOT NULL DEFAULT now()
);

INSERT INTO schema_migrations (name) VALUES ('005_job_log_pruning') ON CONFLICT (name) DO NOTHING;

COMMIT;
