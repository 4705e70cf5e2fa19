"""Reading back what training produced: the trained configurations' summaries, a backtest's candles
for one view of the chart, and the analysis of a job's search.

`candle_window` chooses where a range's bars come from, cheapest first: the candles themselves
when the range holds at most `max_bars` of them (an index range scan, ~1 ms); the overview
stored with the backtest when it has enough bars in the range (a quarter of `max_bars`: no
query at all); else PostgreSQL merges the range's candles into bars (~0.3 µs a candle, and
the overview covers any range of more than a quarter of the whole, so at most ~250,000 candles
of a 1M-candle backtest are read). Candles deleted since the backtest leave the overview.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from trad.backtest.downsample import candle_bars
from trad.data.frames import timeframe_seconds
from trad.db import Database
from trad.errors import Conflict, NotFound
from trad.optimize.analysis import analyse_search
from trad.store import backtests as backtest_store
from trad.store import jobs as job_store
from trad.store.candles import candle_buckets, candle_rows
from trad.store.metrics import metric_state, search_evaluations
from trad.strategies import STRATEGIES

MAX_MARKERS = 2_000
ANALYSIS_METHOD = ("first-order variance shares (fANOVA-style ε² of the score's ranks over each parameter's bins); "
                   "1 − Σ is interactions and noise")
WALK_FORWARD_KEYS = ("scored_folds", "mean_out_of_sample_score", "std_out_of_sample_score", "mean_in_sample_score",
                     "degradation", "skipped")
BAR_COLUMNS = ("time", "open", "high", "low", "close", "volume")


def saved_backtest_id(db: Database, job_id: int) -> int:
    """The backtest a job saved with its configuration (kept when the job is deleted); else NotFound
    (no such job, or one saved before backtests were stored) or Conflict (it saved none)."""
    with db.connection() as conn:
        backtest_id = backtest_store.job_backtest_id(conn, job_id)
        row = None if backtest_id is not None else job_store.get_job(conn, job_id)
    if backtest_id is not None:
        return backtest_id
    if row is None:
        raise NotFound(f"training job {job_id} does not exist")
    if row["status"] == "succeeded":
        raise NotFound(f"training job {job_id} saved its configuration without a backtest (before backtests "
                       "were stored); backtest its parameters with POST /api/v1/backtests")
    if row["status"] in ("queued", "running"):
        raise Conflict(f"training job {job_id} is {row['status']}: its best configuration is backtested when it "
                       "saves it; meanwhile POST /api/v1/backtests tries any parameters")
    raise Conflict(f"training job {job_id} ended {row['status']} without saving a configuration; backtest its "
                   "best parameters with POST /api/v1/backtests")


def configuration_items(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `list_configurations` with their walk-forward summary."""
    items = []
    for row in rows:
        validation = row.get("validation")
        summary = None
        if validation:
            summary = {"folds": len(validation.get("folds") or []), **{k: validation.get(k) for k in WALK_FORWARD_KEYS}}
        items.append({**row, "walk_forward": summary})
    return items


def candle_window(conn: Any, backtest: Mapping[str, Any], start: datetime | None, end: datetime | None,
                  max_bars: int) -> dict[str, Any]:
    """The backtest's candles in [start, end] (clamped to its range) as ≤ max_bars bars, with the trades open then."""
    first, last = backtest["data_start"], backtest["data_end"]
    start = max(_utc(start) if start else first, first)
    end = max(min(_utc(end) if end else last, last), start)
    step = timeframe_seconds(backtest["timeframe"])
    overview = backtest["overview"]
    shown = _overview_slice(overview, start, end, step)
    estimate = len(shown["time"]) * overview["per_bar"]
    bars = None
    if estimate <= max_bars:
        rows = candle_rows(conn, backtest["symbol"], backtest["timeframe"], start, end, max_bars + 1)
        bars = (rows, 1) if 0 < len(rows["time"]) <= max_bars else None
    elif len(shown["time"]) < max_bars // 4:
        per_bar = math.ceil(estimate / max_bars)
        merged = candle_buckets(conn, backtest["symbol"], backtest["timeframe"], start, end, per_bar * step)
        bars = (merged, per_bar) if merged["time"] else None
    if bars is None:  # the overview has enough bars here (or the candles are gone)
        thinner = candle_bars(*(np.asarray(shown[column]) for column in BAR_COLUMNS), max_bars=max_bars)
        bars = ({column: thinner[column].tolist() for column in BAR_COLUMNS}, overview["per_bar"] * thinner["per_bar"])
    columns, per_bar = bars
    trades = backtest_store.trades_between(conn, backtest["id"], start, end, MAX_MARKERS + 1)
    return {**{column: columns[column] for column in BAR_COLUMNS}, "per_bar": per_bar,
            "seconds_per_bar": per_bar * step, "start": start, "end": end, "trades": trades[:MAX_MARKERS],
            "trades_complete": len(trades) <= MAX_MARKERS}


def _overview_slice(overview: Mapping[str, Any], start: datetime, end: datetime, step: int) -> dict[str, list]:
    """The stored overview's bars that overlap [start, end]."""
    times = np.asarray(overview["time"], dtype=np.int64)
    span = overview["per_bar"] * step
    inside = np.flatnonzero((times + span > start.timestamp()) & (times <= end.timestamp()))
    low, high = (int(inside[0]), int(inside[-1]) + 1) if len(inside) else (0, 0)
    return {column: overview[column][low:high] for column in BAR_COLUMNS}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _AnalysisCache:
    """The last few analyses, by job and the evaluations they saw: a finished job's is computed once
    per web process, a running job's again only when it has recorded more."""

    def __init__(self, size: int = 16) -> None:
        self.size, self.entries, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple) -> dict | None:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        return None

    def put(self, key: tuple, value: dict) -> None:
        with self.lock:
            self.entries[key] = value
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


_analyses = _AnalysisCache()


def analysis_of_job(db: Database, row: Mapping[str, Any]) -> dict[str, Any]:
    """The analysis of a job's recorded evaluations (see trad.optimize.analysis)."""
    with db.connection() as conn:
        state = metric_state(conn, row["id"]) or {"total": 0, "unbroken_through": 0}
        key = (row["id"], row["created_at"], state["total"], state["unbroken_through"])
        cached = _analyses.get(key)
        if cached is not None:
            return cached
        columns = search_evaluations(conn, row["id"])
    strategy = STRATEGIES.get(row["strategy"])
    names = list(strategy.param_space.names) if strategy else []
    names += sorted({name for params in columns["params"] for name in params} - set(names))
    categorical = frozenset(p.name for p in strategy.param_space if p.kind == "categorical") if strategy else frozenset()
    result = {"job_id": row["id"], "objective": row["objective"], "method": ANALYSIS_METHOD,
              **analyse_search(columns["iteration"], columns["score"], columns["valid"], columns["params"], names,
                               categorical)}
    _analyses.put(key, result)
    return result
