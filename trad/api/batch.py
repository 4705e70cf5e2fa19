"""/api/v1/training: train every symbol (one job each), watch and cancel the batch, list symbols."""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag

from trad.api.jobs import SECURITY
from trad.api.schemas import (COMMON_ERRORS, BatchProgress, BatchStarted, CancelQuery, CancelResult, SymbolList,
                              TrainAllQuery, TrainAllRequest, errors, shaped)
from trad.api.services import services
from trad.jobs.batches import cancel_training_batch, start_training_batch
from trad.store.candles import candle_summary
from trad.training.batch import batch_progress

bp = APIBlueprint("batch", __name__, url_prefix="/api/v1/training", abp_tags=[Tag(name="batch training")],
                  abp_security=SECURITY, abp_responses=COMMON_ERRORS)


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
