"""What people do to a batch — start one job per symbol, cancel it — for the API and the CLI.

The batch itself (plan, dispatch, cancel modes, progress) is `trad.training.batch`; this module
hands it `create_job` and `stop_job` of `trad.jobs.control` to launch and stop the jobs.
"""

from __future__ import annotations

from typing import Any, Literal

import redis as redis_lib
from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from trad.config import Settings
from trad.db import Database
from trad.errors import InvalidInput
from trad.jobs import control
from trad.jobs.requests import JobRequest, OptimizerName, Timeframe, check_job_request
from trad.training.batch import (DEFAULT_OPTIMIZER, DEFAULT_STRATEGY, BatchPlan, cancel_batch, plan_batch,
                                 start_batch)

CancelMode = Literal["now", "after_current"]


class JobTemplate(JobRequest):
    """A job request without its symbol (the batch names the symbols); every field has a default."""

    strategy: str = Field(default=DEFAULT_STRATEGY, min_length=1, max_length=64)
    timeframe: Timeframe | None = Field(default=None, description="default: the timeframe most symbols have")
    optimizer: OptimizerName = DEFAULT_OPTIMIZER
    symbol: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    @field_validator("symbol", mode="before")
    @classmethod
    def _no_symbol(cls, value: Any) -> None:
        if value is not None:
            raise ValueError("a template names no symbol; list the symbols in `symbols`")
        return None


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
                          mode: CancelMode = "now") -> dict[str, Any]:
    """Cancel the running batch — `now`, or `after_current` (its running jobs finish): `{success, message}`."""
    return cancel_batch(db, lambda job_id: control.stop_job(db, redis, settings, job_id), mode)
