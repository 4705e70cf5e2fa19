"""/api/v1/training-jobs: create, list, read, stop, delete and resume jobs; their progress, logs and metrics."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from flask_openapi3 import APIBlueprint, Tag

from trad.api.paging import JobListQuery, LogQuery, MetricQuery
from trad.api.schemas import COMMON_ERRORS, JobPage, JobPath, JobProgress, JobRow, LogPage, MetricSeries, errors, shaped
from trad.api.services import services
from trad.errors import NotFound
from trad.jobs import control
from trad.jobs.requests import JobRequest
from trad.store import jobs as job_store
from trad.store.logs import count_logs, job_logs
from trad.store.metrics import metric_page, metric_state
from trad.store.progress import job_progress

SECURITY = [{"bearer": []}]

bp = APIBlueprint("jobs", __name__, url_prefix="/api/v1/training-jobs", abp_tags=[Tag(name="training jobs")],
                  abp_security=SECURITY, abp_responses=COMMON_ERRORS)


def metric_series(rows: Iterable[Mapping[str, Any]]) -> dict[str, list]:
    """Chart series of a page of a job's evaluations (rows of `metric_page`, with their running best)."""
    keys = {"iterations": "iteration", "score": "score", "best_score": "best_score", "params": "params",
            "valid": "valid", "duration_ms": "duration_ms"}
    series: dict[str, list] = {name: [] for name in keys}
    for row in rows:
        for name, column in keys.items():
            series[name].append(row[column])
    return series


@bp.post("", responses={201: JobRow, **errors(400, 413, 415)})
def create_job(body: JobRequest) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a training job: check it, insert it `queued` and enqueue it."""
    svc = services()
    row = control.create_job(svc.db, svc.redis, svc.settings, body)
    return shaped(JobRow, row), 201, {"Location": f"{bp.url_prefix}/{row['id']}"}


@bp.get("", responses={200: JobPage})
def list_jobs(query: JobListQuery) -> dict[str, Any]:
    """A page of jobs, newest first, optionally of one status (`page`/`page_size` or `limit`/`offset`)."""
    offset, limit = query.rows
    with services().db.connection() as conn:
        items, total = job_store.list_jobs(conn, status=query.status, offset=offset, limit=limit)
    return shaped(JobPage, {"items": items, "meta": query.meta(total)})


@bp.get("/<int:job_id>", responses={200: JobRow, **errors(404)})
def get_job(path: JobPath) -> dict[str, Any]:
    """One job's row."""
    return shaped(JobRow, control.get_job_or_404(services().db, path.job_id))


@bp.get("/<int:job_id>/progress", responses={200: JobProgress, **errors(404)})
def get_progress(path: JobPath) -> dict[str, Any]:
    """One job's progress: step, episode and candle level."""
    with services().db.connection() as conn:
        row = job_progress(conn, path.job_id)
    if row is None:
        raise NotFound(f"training job {path.job_id} does not exist")
    return shaped(JobProgress, row)


@bp.post("/<int:job_id>/stop", responses={200: JobRow, **errors(404, 409)})
def stop_job(path: JobPath) -> dict[str, Any]:
    """Stop a job: a queued one at once, a running one within seconds; 409 if it has ended."""
    svc = services()
    return shaped(JobRow, control.stop_job(svc.db, svc.redis, svc.settings, path.job_id))


@bp.delete("/<int:job_id>", responses={204: None, **errors(404)})
def delete_job(path: JobPath) -> tuple[str, int]:
    """Delete a job with its metrics and logs (stopping it first); its trained configurations stay."""
    svc = services()
    control.delete_job(svc.db, svc.redis, svc.settings, path.job_id)
    return "", 204


@bp.post("/<int:job_id>/resume", responses={200: JobRow, **errors(404, 409)})
def resume_job(path: JobPath) -> dict[str, Any]:
    """Queue a stopped or failed job again; what it already evaluated is not evaluated again."""
    svc = services()
    return shaped(JobRow, control.resume_job(svc.db, svc.redis, svc.settings, path.job_id))


@bp.get("/<int:job_id>/logs", responses={200: LogPage, **errors(404)})
def get_logs(path: JobPath, query: LogQuery) -> dict[str, Any]:
    """A page of a job's log lines, oldest first (`page`/`page_size` or `limit`/`offset`)."""
    db = services().db
    control.get_job_or_404(db, path.job_id)
    offset, limit = query.rows
    with db.connection() as conn:
        total = count_logs(conn, path.job_id)
        lines = job_logs(conn, path.job_id, offset=offset, limit=limit)
    return shaped(LogPage, {"logs": lines, "meta": query.meta(total)})


@bp.get("/<int:job_id>/metrics", responses={200: MetricSeries, **errors(404)})
def get_metrics(path: JobPath, query: MetricQuery) -> dict[str, Any]:
    """Series for charts: score and running best score per iteration, with the parameters tried.

    All of them by default; `?after_iteration=N` only those after N (pass the last answer's
    `meta.complete_through` to fetch only what is new); `?limit=100` the latest 100 and
    `&offset=100` the 100 before them (or `?page_size=100` and `&page=2`).
    """
    offset, limit = query.rows
    with services().db.connection() as conn:
        state = metric_state(conn, path.job_id)  # read before the page: a page newer than the state is safe
        if state is None:
            raise NotFound(f"training job {path.job_id} does not exist")
        rows = metric_page(conn, path.job_id, after_iteration=query.after_iteration, limit=limit, offset=offset)
    meta = {"total": state["total"], "complete_through": state["unbroken_through"]}
    return shaped(MetricSeries, {**metric_series(rows), "meta": meta})
