"""A reconciler in its own process, as in a `trad worker`: started by the tests, released by a barrier."""

from __future__ import annotations

from typing import Any

from trad.config import Settings


def reconcile_after(barrier: Any, settings: Settings, results: Any) -> None:
    """Wait at the barrier, reconcile once with this process's own pool and Redis client, report."""
    from trad.db import Database
    from trad.jobs.queue import connect_redis
    from trad.jobs.reconcile import describe, reconcile

    db = Database(settings.database_url, max_connections=2, application_name="trad-worker")
    redis = connect_redis(settings)
    with db.connection() as conn, conn.cursor() as cur:  # connected before the start, as a worker is
        cur.execute("SELECT 1")
    barrier.wait(timeout=60)
    try:
        results.put(describe(reconcile(db, redis, settings)))
    except Exception as exc:  # reported, never lost in the child
        results.put({"error": repr(exc)})
    finally:
        db.close()
        redis.close()
