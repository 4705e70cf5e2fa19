"""/api/v1/training: train every symbol (one job each), watch and cancel the batch, list symbols."""

from __future__ import annotations

from typing import Any

import redis as redis_lib
from flask_openapi3 import APIBlueprint, Tag

from trad.api.jobs import SECURITY
from trad.api.schemas import (COMMON_ERRORS, BatchProgress, BatchStarted, CancelQuery, CancelResult, JobTemplate,
                              SymbolList, TrainAllQuery, TrainAllRequest, errors, shaped)
from trad.api.services import services
from trad.config import Settings
from trad.db import Database
from trad.errors import InvalidInput
from trad.jobs import control
from trad.jobs.requests import JobRequest, check_job_request
from trad.store.candles import candle_summary
from trad.training.batch import BatchPlan, batch_progress, cancel_batch, plan_batch, start_batch

bp = APIBlueprint("batch", __name__, url_prefix="/api/v1/training", abp_tags=[Tag(name="batch training")],
                  abp_security=SECURITY, abp_responses=COMMON_ERRORS)


def job_requests(plan: BatchPlan, template: JobTemplate, max_configs: int) -> dict[str, JobRequest]:
    """One checked job request per symbol to train; InvalidInput names template fields as `template.…`."""
    fields = template.model_dump(exclude={"symbol", "timeframe"})
    requests, details = {}, []
    for symbol in plan.to_train:
        request = JobRequest.model_validate({**fields, "symbol": symbol, "timeframe": plan.timeframe})
        try:
            check_job_request(request, plan.candle_ranges[symbol], max_configs)
        except InvalidInput as exc:
            for detail in exc.details:
                moved = _in_template(detail, symbol)
                if moved not in details:
                    details.append(moved)
        requests[symbol] = request
    if details:
        raise InvalidInput.fields(details)
    return requests


def _in_template(detail: dict[str, Any], symbol: str) -> dict[str, str]:
    if detail["field"] == "symbol":
        return {"field": "symbols", "issue": f"{symbol}: {detail['issue']}"}
    issue = detail["issue"] if detail["field"] not in ("start", "end") else f"{symbol}: {detail['issue']}"
    return {"field": f"template.{detail['field']}", "issue": issue}


def start_training_batch(db: Database, redis: redis_lib.Redis, settings: Settings, template: JobTemplate,
                         symbols: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Plan, check and start a batch (one job per symbol): the one way of the API and the CLI."""
    with db.connection() as conn:
        plan = plan_batch(conn, strategy=template.strategy, timeframe=template.timeframe, symbols=symbols,
                          force=force)
    requests = job_requests(plan, template, settings.max_configs)
    redis.ping()  # no batch row is written while Redis is down
    stored = template.model_dump(mode="json", exclude={"symbol"}) | {"timeframe": plan.timeframe}
    return start_batch(
        db, plan, stored, force,
        launch=lambda symbol, batch_id: control.create_job(db, redis, settings, requests[symbol], batch_id=batch_id),
        stop=lambda job_id: control.stop_job(db, redis, settings, job_id))


def cancel_training_batch(db: Database, redis: redis_lib.Redis, settings: Settings,
                          mode: str = "now") -> dict[str, Any]:
    """Cancel the running batch — `now`, or `after_current` (its running jobs finish): `{success, message}`."""
    return cancel_batch(db, lambda job_id: control.stop_job(db, redis, settings, job_id), mode)


@bp.post("/train-all", responses={202: BatchStarted, **errors(400, 409, 413, 415)})
def train_all(query: TrainAllQuery, body: TrainAllRequest) -> tuple[dict[str, Any], int]:
    """Start a batch: one job per symbol, skipping symbols already trained on their newest candle."""
    svc = services()
    started = start_training_batch(svc.db, svc.redis, svc.settings, body.template, body.symbols, query.force)
    return shaped(BatchStarted, started), 202


@bp.get("/progress", responses={200: BatchProgress})
def progress() -> dict[str, Any]:
    """Progress of the newest batch."""
    return shaped(BatchProgress, batch_progress(services().db))


@bp.post("/cancel", responses={200: CancelResult})
def cancel(query: CancelQuery) -> dict[str, Any]:
    """Cancel the running batch: stop its queued and running jobs (`now`), or only its queued ones,
    letting the running jobs finish (`after_current`)."""
    svc = services()
    return shaped(CancelResult, cancel_training_batch(svc.db, svc.redis, svc.settings, query.mode))


@bp.get("/symbols", responses={200: SymbolList})
def symbols() -> dict[str, Any]:
    """Symbols with candles: per timeframe, how many and from when to when."""
    with services().db.connection() as conn:
        rows = candle_summary(conn)
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["symbol"], []).append(row)
    return shaped(SymbolList, {"symbols": [{"symbol": s, "timeframes": tfs} for s, tfs in grouped.items()]})
