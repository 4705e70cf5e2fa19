"""/api/v1/training/status: the whole system at a glance — workers and the job each one runs, the
queue's length, running and queued job counts, the running jobs, the current batch."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag

from trad.api.health import queue_state
from trad.api.jobs import SECURITY
from trad.api.schemas import COMMON_ERRORS, TrainingStatus, shaped
from trad.api.services import services
from trad.store import jobs as job_store
from trad.training.batch import batch_progress

RUNNING_SHOWN = 100

bp = APIBlueprint("status", __name__, url_prefix="/api/v1/training", abp_tags=[Tag(name="batch training")],
                  abp_security=SECURITY, abp_responses=COMMON_ERRORS)


@bp.get("/status", responses={200: TrainingStatus})
def training_status() -> dict[str, Any]:
    """Workers (state, the job each runs, last heartbeat), queue length, job counts, running jobs, the batch.

    RQ says which run a worker works on; the job is the one whose current run that is. 503 when
    Redis or PostgreSQL does not answer.
    """
    svc = services()
    workers, length = queue_state(svc)
    with svc.db.connection() as conn:
        jobs_of = job_store.job_ids_of_runs(conn, [w["current_job"] for w in workers if w["current_job"]])
        counts = job_store.count_by_status(conn)
        running, _ = job_store.list_jobs(conn, status="running", limit=RUNNING_SHOWN)
    shown = [{"name": w["name"], "state": w["state"], "run_id": w["current_job"],
              "job_id": jobs_of.get(w["current_job"]), "last_heartbeat": w["last_heartbeat"]} for w in workers]
    return shaped(TrainingStatus, {"workers": shown, "queue": {"name": svc.settings.queue, "length": length},
                                   "jobs": counts, "running_jobs": running, "batch": batch_progress(svc.db)})
