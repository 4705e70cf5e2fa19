"""/api/v1/health: can the app reach PostgreSQL and Redis, which workers serve the queue, how long it is."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from flask_openapi3 import APIBlueprint, Tag
from rq import Worker

from trad.api.schemas import errors, Health, shaped
from trad.api.services import Services, services
from trad.jobs.queue import training_queue

log = logging.getLogger(__name__)

bp = APIBlueprint("health", __name__, url_prefix="/api/v1/health", abp_tags=[Tag(name="health")],
                  abp_security=[{"bearer": []}], abp_responses=errors(401, 422, 500))


def timed_check(name: str, probe: Callable[[], Any]) -> dict[str, Any]:
    """`{ok, latency_ms}` of one probe; a failure is logged, never raised."""
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        log.warning("health: %s is not reachable: %s", name, exc)
        return {"ok": False, "latency_ms": None}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def ping_database(svc: Services) -> None:
    with svc.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")


def worker_state(worker: Worker) -> str:
    """RQ's state of a worker, "starting" before it has recorded one."""
    state = worker.get_state()
    return "starting" if state in (None, "?") else str(state)


def queue_state(svc: Services) -> tuple[list[dict[str, Any]], int | None]:
    """The workers listening on the training queue and its length.

    A worker registers before it records its first state; RQ reports that moment as "?", shown
    here as "starting"."""
    queue = training_queue(svc.redis, svc.settings)
    workers = [{"name": w.name, "state": worker_state(w), "current_job": w.get_current_job_id(),
                "last_heartbeat": w.last_heartbeat} for w in Worker.all(queue=queue)]
    return workers, queue.count


@bp.get("", responses={200: Health, 503: Health})
def health() -> tuple[dict[str, Any], int]:
    """200 when PostgreSQL and Redis both answer, else 503 with the same shape."""
    svc = services()
    database = timed_check("PostgreSQL", lambda: ping_database(svc))
    redis = timed_check("Redis", svc.redis.ping)
    workers, length = [], None
    if redis["ok"]:
        try:
            workers, length = queue_state(svc)
        except Exception as exc:
            log.warning("health: could not read the workers of queue %s: %s", svc.settings.queue, exc)
    healthy = database["ok"] and redis["ok"]
    body = {"status": "ok" if healthy else "degraded", "database": database, "redis": redis,
            "workers": workers, "queue": {"name": svc.settings.queue, "length": length}}
    return shaped(Health, body), 200 if healthy else 503
