"""SQL of the job change log: `training_jobs` rows by version, the tombstones of deleted jobs
(`training_job_deletions`) and how far those have been pruned (`training_job_deletions_pruned`).

Every change of a job row takes the next version in commit order (migration 004) and a
deletion leaves a tombstone with its own version, so rows and tombstones read by version are
the log of every change. Each query here is served by an index (checked with EXPLAIN at 20,000
jobs: version for the newest changes and for catching up, status for the unfinished jobs).

Rows come as PostgreSQL's `row_to_json` text (`json`) beside the few columns a stream filters
on: serialising 1,000 rows so costs ~0.13 s of the server's time against ~0.8 s of Python's
(decode the JSONB columns, convert, encode) in the web process. Its text differs from the
API's in two ways, mended by `trad.api.events.RowText` with `columns_of_type`: a non-finite
float is a string ("NaN") where the API writes null, and a timestamp drops the trailing zeros
of its microseconds.

A listener (`trad.api.broadcaster`) LISTENs on CHANNEL, where the triggers announce every
change, starts from `log_start` and then reads `changes_after` the version it has reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2.extensions import connection as Connection

from trad.store.jobs import STATUSES, TERMINAL_STATUSES

UNFINISHED_STATUSES = tuple(s for s in STATUSES if s not in TERMINAL_STATUSES)
CHANNEL = "training_jobs"  # the NOTIFY channel of the job triggers (migrations 001 and 004)
LOGGED = ("j.id, j.version, j.status, j.batch_id, j.created_at = j.updated_at AS fresh, "
          "row_to_json(j)::text AS json FROM training_jobs j")


def _log(direction: str) -> str:
    """Rows and tombstones above %(after)s as one log (a tombstone's `json` is null): the first
    %(limit)s of each in `direction`. Each side limits itself, so each reads its version index
    and serialises only what it returns (with the limit outside, the planner scanned and
    serialised all 20,000 rows: 0.43 s instead of 0.1 s)."""
    return (f"(SELECT {LOGGED} WHERE j.version > %(after)s ORDER BY j.version {direction} LIMIT %(limit)s) "
            "UNION ALL (SELECT d.job_id, d.version, NULL, NULL, NULL, NULL FROM training_job_deletions d "
            f"WHERE d.version > %(after)s ORDER BY d.version {direction} LIMIT %(limit)s)")


def changes_after(conn: Connection, version: int, limit: int) -> list[dict]:
    """The first `limit` log entries above `version`, in version order (a deletion's `json` is None)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({_log('ASC')}) log ORDER BY version LIMIT %(limit)s",
                    {"after": version, "limit": limit})
        return [dict(r) for r in cur.fetchall()]


def newest_changes(conn: Connection, limit: int) -> list[dict]:
    """The newest `limit` log entries, in version order."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM (SELECT * FROM ({_log('DESC')}) log ORDER BY version DESC LIMIT %(limit)s) newest "
                    "ORDER BY version", {"after": 0, "limit": limit})
        return [dict(r) for r in cur.fetchall()]


def unfinished_jobs(conn: Connection) -> list[dict]:
    """Every queued or running job, in version order."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {LOGGED} WHERE status = ANY(%s) ORDER BY version",
                    (list(UNFINISHED_STATUSES),))
        return [dict(r) for r in cur.fetchall()]


def logged_job(conn: Connection, job_id: int) -> dict | None:
    """One job's row as the log has it, or None."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {LOGGED} WHERE id = %s", (job_id,))
        row = cur.fetchone()
        return dict(row) if row else None


def columns_of_type(conn: Connection, type_name: str) -> frozenset[str]:
    """The columns of training_jobs of one type (e.g. 'double precision')."""
    with conn.cursor() as cur:
        cur.execute("""SELECT attname FROM pg_attribute
                        WHERE attrelid = 'training_jobs'::regclass AND atttypid = %s::regtype
                          AND attnum > 0 AND NOT attisdropped""", (type_name,))
        return frozenset(r["attname"] for r in cur.fetchall())


def latest_version(conn: Connection) -> int:
    """The highest version of any row or tombstone (0 for an empty log)."""
    with conn.cursor() as cur:
        cur.execute("SELECT GREATEST((SELECT max(version) FROM training_jobs), "
                    "(SELECT max(version) FROM training_job_deletions), 0) AS v")
        return int(cur.fetchone()["v"])


def pruned_through(conn: Connection) -> int:
    """The newest version of a pruned tombstone (0 when none was pruned): a replay from an
    older version cannot be complete."""
    with conn.cursor() as cur:
        cur.execute("SELECT through_version FROM training_job_deletions_pruned")
        row = cur.fetchone()
        return int(row["through_version"]) if row else 0


def listen(conn: Connection) -> None:
    """Have the (autocommit) connection told of every change of the log as it commits."""
    with conn.cursor() as cur:
        cur.execute(f"LISTEN {CHANNEL}")


@dataclass(frozen=True)
class LogStart:
    """What a listener starts from: the log's newest entries, the unfinished jobs, the pruning
    floor and the version reached, all of one snapshot; and the columns RowText mends."""

    float_columns: frozenset[str]
    time_columns: frozenset[str]
    newest: list[dict]
    unfinished: list[dict]
    pruned: int
    version: int


def log_start(conn: Connection, limit: int) -> LogStart:
    """The newest `limit` entries and the rest of LogStart, of one snapshot: a repeatable-read
    transaction on an autocommit connection."""
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        return LogStart(columns_of_type(conn, "double precision"), columns_of_type(conn, "timestamp with time zone"),
                        newest_changes(conn, limit), unfinished_jobs(conn), pruned_through(conn),
                        latest_version(conn))
    finally:
        with conn.cursor() as cur:
            cur.execute("COMMIT")


def prune_deletions(conn: Connection, days: float) -> int:
    """Delete tombstones older than `days` days and remember the newest version among them;
    returns how many were deleted."""
    with conn.cursor() as cur:
        cur.execute(
            """WITH pruned AS (
                   DELETE FROM training_job_deletions
                    WHERE deleted_at < now() - make_interval(days => %s)
                RETURNING version)
               INSERT INTO training_job_deletions_pruned AS p (through_version)
               SELECT max(version) FROM pruned HAVING count(*) > 0
               ON CONFLICT (singleton) DO UPDATE
                  SET through_version = GREATEST(p.through_version, EXCLUDED.through_version), pruned_at = now()
               RETURNING (SELECT count(*) FROM pruned) AS n""",
            (int(days),))
        row = cur.fetchone()
        return int(row["n"]) if row else 0
