-- Versions in commit order: a change takes its version under a transaction-level advisory
-- lock, held until commit, so no transaction commits a lower version after a higher one.
-- A reader that has seen version V has then seen every committed change up to V: the SSE
-- stream and a reconnecting client can resume from "version > V" and miss nothing.
BEGIN;
SET LOCAL client_min_messages = warning;

CREATE OR REPLACE FUNCTION training_jobs_next_version() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7627360);  -- one fixed key for all job versions
    RETURN nextval('training_jobs_version_seq');
END;
$$;

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
    NEW.version := training_jobs_next_version();
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION training_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    deleted_version bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        deleted_version := training_jobs_next_version();
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

INSERT INTO schema_migrations (name) VALUES ('004_version_commit_order') ON CONFLICT (name) DO NOTHING;

COMMIT;
