"""Batch training: one job per symbol, skipping symbols already trained on their newest candle.

A batch row (`training_batches`) records what was asked; its jobs are ordinary training
jobs carrying its `batch_id`. Progress is computed from the batch row and its job rows on
every read, and a batch whose jobs have all ended is marked finished by the first reader
that notices (nothing needs to run in the background for that). Creating and stopping
jobs is passed in as functions, so this module stays below the RQ glue.

Cancelling has two modes: `now` stops every queued and running job of the batch; `after_current`
lets the jobs already running finish and starts no new one (the queued jobs are stopped in the
transaction that records the cancel, so no job of the batch starts after it).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from trad.db import CONNECTION_ERRORS, Database
from trad.errors import Conflict, InvalidInput, NotFound, TradError
from trad.store import batches as batch_store
from trad.store.candles import candle_summary
from trad.training.forecast import format_eta
from trad.store.configs import latest_configuration

log = logging.getLogger(__name__)

DEFAULT_STRATEGY = "liquidity_sweep"
DEFAULT_OPTIMIZER = "bayesian"
JOB_GAP_SECONDS = 0.5  # between one job's end and the next one's start, until the batch shows its own

Launch = Callable[[str, int], Mapping[str, Any]]  # (symbol, batch_id) -> the new job's row
Stop = Callable[[int], Any]                       # job_id -> anything; Conflict/NotFound are fine
CANCEL_MODES = ("now", "after_current")


@dataclass(frozen=True)
class BatchPlan:
    """Which symbols a batch covers, which of them it trains and which it skips."""

    strategy: str
    timeframe: str
    symbols: tuple[str, ...]
    to_train: tuple[str, ...]
    skipped: tuple[str, ...]
    candle_ranges: dict[str, list[dict]] = field(default_factory=dict)


def choose_timeframe(summary: Iterable[Mapping[str, Any]], symbols: Iterable[str] | None) -> str | None:
    """The timeframe most of the symbols have candles of (ties: the one with more candles)."""
    wanted = set(symbols) if symbols is not None else None
    symbol_count: dict[str, int] = defaultdict(int)
    candle_count: dict[str, int] = defaultdict(int)
    for row in summary:
        if wanted is None or row["symbol"] in wanted:
            symbol_count[row["timeframe"]] += 1
            candle_count[row["timeframe"]] += int(row["candles"])
    if not symbol_count:
        return None
    return max(symbol_count, key=lambda tf: (symbol_count[tf], candle_count[tf]))


def is_current(configuration: Mapping[str, Any] | None, last_candle: datetime) -> bool:
    """Whether a trained configuration already covers the newest stored candle."""
    return bool(configuration and configuration.get("data_end") and configuration["data_end"] >= last_candle)


def plan_batch(conn: Any, *, strategy: str, timeframe: str | None, symbols: list[str] | None,
               force: bool) -> BatchPlan:
    """Pick the batch's symbols (default: every symbol with candles of the timeframe) and the skips."""
    summary = candle_summary(conn)
    ranges: dict[str, list[dict]] = defaultdict(list)
    for row in summary:
        ranges[row["symbol"]].append(row)
    timeframe = timeframe or choose_timeframe(summary, symbols)
    if timeframe is None:
        raise InvalidInput.field("symbols", "no candles are stored; import or synthesise some first")
    chosen = _symbols_with_candles(ranges, timeframe, symbols)
    to_train, skipped = [], []
    for symbol in chosen:
        last = next(r["last"] for r in ranges[symbol] if r["timeframe"] == timeframe)
        current = is_current(latest_configuration(conn, symbol, timeframe, strategy), last)
        (skipped if current and not force else to_train).append(symbol)
    return BatchPlan(strategy, timeframe, tuple(chosen), tuple(to_train), tuple(skipped),
                     {s: ranges[s] for s in chosen})


def _symbols_with_candles(ranges: Mapping[str, list[dict]], timeframe: str,
                          symbols: list[str] | None) -> list[str]:
    """The named symbols (each must have candles of the timeframe), or every symbol that has some."""
    has = {s for s, rows in ranges.items() if any(r["timeframe"] == timeframe for r in rows)}
    if symbols is None:
        if not has:
            raise InvalidInput.field("symbols", f"no symbol has {timeframe} candles; import or synthesise some first")
        return sorted(has)
    details = [{"field": f"symbols.{i}", "issue": f"no {timeframe} candles of {s}"}
               for i, s in enumerate(symbols) if s not in has]
    if details:
        raise InvalidInput.fields(details)
    return list(dict.fromkeys(symbols))


def start_batch(db: Database, plan: BatchPlan, template: Mapping[str, Any], force: bool,
                launch: Launch, stop: Stop) -> dict[str, Any]:
    """Record the batch and create its jobs; Conflict while another batch runs."""
    with db.connection() as holder:
        batch_store.lock_batch_starts(holder)
        running = batch_store.latest_batch(holder, "running")
        if running is not None and finish_if_done(db, running["id"])["status"] == "running":
            raise Conflict(f"batch {running['id']} is still running; cancel it or wait until it ends")
        batch = batch_store.insert_batch(holder, symbols=plan.symbols, template=template, force=force,
                                         skipped=len(plan.skipped))
        batch_store.hold_dispatch_lock(holder, batch["id"])
        holder.commit()
        try:
            jobs, failures = _dispatch(db, batch["id"], plan.to_train, launch)
            _stop_if_cancelled(db, batch["id"], stop)
        finally:
            batch_store.release_dispatch_lock(holder, batch["id"])
    finished = finish_if_done(db, batch["id"])
    log.info("batch %s: %d jobs, %d skipped, %d failed to start", batch["id"], len(jobs),
             len(plan.skipped), len(failures))
    return {"batch_id": batch["id"], "status": finished["status"], "strategy": plan.strategy,
            "timeframe": plan.timeframe, "total_symbols": len(plan.symbols), "jobs": jobs,
            "skipped": list(plan.skipped), "failed": failures,
            "message": f"{len(jobs)} jobs queued, {len(plan.skipped)} symbols skipped (already current)"
                       + (f", {len(failures)} could not start" if failures else "")}


def _dispatch(db: Database, batch_id: int, symbols: Iterable[str],
              launch: Launch) -> tuple[list[dict], list[dict]]:
    """Create one job per symbol until done or cancelled; a symbol whose job cannot start counts failed."""
    jobs, failures = [], []
    for symbol in symbols:
        with db.connection() as conn:
            if batch_store.cancel_requested(conn, batch_id):
                break
        try:
            row = launch(symbol, batch_id)
        except (TradError, *CONNECTION_ERRORS) as exc:
            issue = getattr(exc, "message", None) or str(exc)
            with db.transaction() as conn:
                batch_store.record_dispatch_failure(conn, batch_id, f"{symbol}: {issue}")
            failures.append({"symbol": symbol, "issue": issue})
            continue
        jobs.append({"symbol": symbol, "job_id": int(row["id"])})
    return jobs, failures


def _stop_if_cancelled(db: Database, batch_id: int, stop: Stop) -> None:
    """Stop jobs created while a cancel was being processed, as its mode says."""
    with db.connection() as conn:
        batch = batch_store.get_batch(conn, batch_id)
    if batch is None or not batch["cancel_requested"]:
        return
    if batch["cancel_mode"] == "after_current":
        with db.transaction() as conn:
            batch_store.stop_queued_batch_jobs(conn, batch_id)
    else:
        _stop_all(db, batch_id, stop)


def _stop_all(db: Database, batch_id: int, stop: Stop) -> int:
    """Ask every queued or running job of the batch to stop; returns how many were asked."""
    with db.connection() as conn:
        job_ids = batch_store.active_batch_job_ids(conn, batch_id)
    asked = 0
    for job_id in job_ids:
        try:
            stop(job_id)
            asked += 1
        except (Conflict, NotFound):
            pass  # it ended or was deleted meanwhile
    return asked


def cancel_batch(db: Database, stop: Stop, mode: str = "now") -> dict[str, Any]:
    """Cancel the running batch: `now` stops its queued and running jobs, `after_current` its
    queued ones only (the running ones finish). `{success, message}`."""
    if mode not in CANCEL_MODES:
        raise InvalidInput.field("mode", f"must be one of {', '.join(CANCEL_MODES)}")
    with db.connection() as conn:
        running = batch_store.latest_batch(conn, "running")
    if running is None or finish_if_done(db, running["id"])["status"] != "running":
        return {"success": False, "message": "no batch training is running"}
    with db.transaction() as conn:
        batch = batch_store.request_batch_cancel(conn, running["id"], mode)
        stopped = batch_store.stop_queued_batch_jobs(conn, batch["id"]) if batch and mode == "after_current" else []
    if batch is None:
        return {"success": False, "message": "no batch training is running"}
    if mode == "now":
        told = f"asked {_stop_all(db, batch['id'], stop)} jobs to stop"
    else:
        with db.connection() as conn:
            finishing = batch_store.batch_job_tally(conn, batch["id"])["running"]
        told = f"stopped {len(stopped)} queued jobs; {finishing} running jobs finish first"
    finished = finish_if_done(db, batch["id"])
    state = "cancelled" if finished["status"] != "running" else "cancelling"
    return {"success": True, "message": f"batch {batch['id']} {state}: {told}"}


def finish_if_done(db: Database, batch_id: int) -> dict[str, Any]:
    """Mark a running batch finished once it is dispatched and none of its jobs is active; returns its row."""
    with db.transaction() as conn:
        batch = batch_store.get_batch(conn, batch_id)
        if batch is None or batch["status"] != "running" or not batch_store.dispatch_over(conn, batch_id):
            return batch
        tally = batch_store.batch_job_tally(conn, batch_id)
        if tally["queued"] or tally["running"]:
            return batch
        return batch_store.finish_batch(conn, batch_id, **final_counts(batch, tally)) or batch


def final_counts(batch: Mapping[str, Any], tally: Mapping[str, Any]) -> dict[str, Any]:
    """The end state of a batch whose jobs have all ended: status, counts and a summary message."""
    total = len(batch["symbols"])
    successful, failed, stopped = tally["succeeded"], batch["failed"] + tally["failed"], tally["stopped"]
    completed = min(total, batch["skipped"] + successful + failed + stopped)
    status = "cancelled" if batch["cancel_requested"] else ("failed" if failed else "succeeded")
    parts = [f"{successful} successful", f"{failed} failed", f"{batch['skipped']} skipped"]
    if stopped:
        parts.append(f"{stopped} stopped")
    message = ("Cancelled: " if status == "cancelled" else "Finished: ") + ", ".join(parts)
    if completed < total:
        message += f"; {total - completed} symbols not trained"
    if batch.get("message"):
        message += f"; could not start {batch['message']}"
    return {"status": status, "completed_symbols": completed, "successful": successful, "failed": failed,
            "stopped": stopped, "message": message}


def batch_progress(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """The progress of the newest batch (finishing it if its jobs have all ended)."""
    with db.connection() as conn:
        batch = batch_store.latest_batch(conn)
    if batch is not None and batch["status"] == "running":
        batch = finish_if_done(db, batch["id"])
    jobs = None
    with db.connection() as conn:
        tally = batch_store.batch_job_tally(conn, batch["id"]) if batch else None
        if batch is not None and batch["status"] == "running" and not batch["cancel_requested"]:
            jobs = batch_store.batch_job_timings(conn, batch["id"])
        last_run = batch_store.last_finished_at(conn)
    return summarize(batch, tally, last_run, now or datetime.now(timezone.utc), jobs)


def summarize(batch: Mapping[str, Any] | None, tally: Mapping[str, Any] | None,
              last_run: datetime | None, now: datetime,
              jobs: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The batch progress shape of the API, from the batch row and the tally of its jobs."""
    if batch is None:
        return idle_progress(last_run)
    total, running = len(batch["symbols"]), batch["status"] == "running"
    if running:
        successful, failed, skipped = tally["succeeded"], batch["failed"] + tally["failed"], batch["skipped"]
        stopped = tally["stopped"]
        completed = min(total, skipped + successful + failed + stopped)
        active_progress, current = tally["active_progress"], tally["current_symbol"]
    else:
        successful, failed, skipped, stopped = batch["successful"], batch["failed"], batch["skipped"], batch["stopped"]
        completed, active_progress, current = batch["completed_symbols"], 0.0, None
    percent = 100.0 if total == 0 else min(100.0, (100.0 * completed + active_progress) / total)
    cancelling = running and bool(batch["cancel_requested"])
    elapsed = max(0.0, ((batch["finished_at"] or now) - batch["started_at"]).total_seconds())
    eta = batch_seconds_left(jobs or [], now) if running and not cancelling else (None if running else 0.0)
    return {
        "batch_id": batch["id"], "training_in_progress": running, "current_symbol": current, "total_symbols": total,
        "completed_symbols": completed, "remaining_symbols": total - completed,
        "progress_percent": round(percent, 1),
        "results": {"successful": successful, "failed": failed, "skipped": skipped, "stopped": stopped},
        "timing": {"elapsed_seconds": round(elapsed, 1), "eta_seconds": None if eta is None else round(eta, 1),
                   "elapsed_formatted": format_duration(elapsed), "eta_formatted": format_duration(eta)},
        "cancelling": cancelling, "cancel_mode": batch["cancel_mode"] if cancelling else None,
        "started_at": batch["started_at"],
        "message": _live_message(batch, tally, total, completed) if running else batch["message"],
        "last_training_run": last_run,
    }


def idle_progress(last_run: datetime | None) -> dict[str, Any]:
    """The progress shape when no batch has ever run."""
    return {"batch_id": None, "training_in_progress": False, "current_symbol": None, "total_symbols": 0,
            "completed_symbols": 0, "remaining_symbols": 0, "progress_percent": 0.0,
            "results": {"successful": 0, "failed": 0, "skipped": 0, "stopped": 0}, "timing": None,
            "cancelling": False, "cancel_mode": None, "started_at": None,
            "message": "No batch training has run yet", "last_training_run": last_run}


def _live_message(batch: Mapping[str, Any], tally: Mapping[str, Any], total: int, completed: int) -> str:
    if batch["cancel_requested"] and batch["cancel_mode"] == "after_current":
        return f"Cancelling after the current jobs: waiting for {tally['running']} running jobs to finish"
    if batch["cancel_requested"]:
        return f"Cancelling: waiting for {tally['queued'] + tally['running']} jobs to stop"
    training = f" ({tally['current_symbol']})" if tally["current_symbol"] else ""
    return (f"Training {total} symbols: {completed} done, {tally['running']} running{training}, "
            f"{total - completed - tally['running']} waiting")


def batch_seconds_left(jobs: list[Mapping[str, Any]], now: datetime) -> float | None:
    """Seconds until a batch's jobs have all ended, from their candles and the speed the batch has shown.

    Every job of a batch has the same template, so a job's time is taken as proportional to
    its candles: the seconds per candle of the jobs that succeeded (else of the running jobs'
    own forecasts: elapsed + ETA). A running job has its own ETA; each queued one takes its
    candles × seconds per candle, plus the gap between jobs seen so far (JOB_GAP_SECONDS
    before one is seen), shared among the jobs running at once. Skipped symbols have no job
    and add no time. None until there is signal: no job done and no running job with an ETA.
    """
    running = [j for j in jobs if j["status"] == "running"]
    queued = [j for j in jobs if j["status"] == "queued"]
    if not running and not queued:
        return 0.0 if jobs else None
    per_candle = _seconds_per_candle(jobs, now)
    left = []
    for job in running:
        if job["estimated_completion"] is not None:
            left.append(max(0.0, (job["estimated_completion"] - now).total_seconds()))
        elif per_candle is not None and job["started_at"] is not None:
            left.append(max(0.0, per_candle * job["candles"] - (now - job["started_at"]).total_seconds()))
        else:
            return None
    if queued and per_candle is None:
        return None
    gap = _job_gap(jobs)
    waiting = sum(per_candle * job["candles"] + gap for job in queued)
    if not waiting:
        return max(left, default=0.0)
    return (sum(left) + waiting) / max(1, len(running))


def _seconds_per_candle(jobs: list[Mapping[str, Any]], now: datetime) -> float | None:
    """A job's seconds per candle: over the succeeded jobs, else the running jobs' forecasts."""
    done = [j for j in jobs if j["status"] == "succeeded" and j["started_at"] and j["finished_at"]]
    if not done:
        done = [{**j, "finished_at": j["estimated_completion"]} for j in jobs
                if j["status"] == "running" and j["started_at"] and j["estimated_completion"]]
    seconds = sum((j["finished_at"] - j["started_at"]).total_seconds() for j in done)
    candles = sum(int(j["candles"] or 0) for j in done)
    return seconds / candles if candles > 0 and seconds > 0 else None


def _job_gap(jobs: list[Mapping[str, Any]]) -> float:
    """The mean time from one job's end to the next one's start, among the batch's jobs so far."""
    ended = sorted((j for j in jobs if j["started_at"] and j["finished_at"]), key=lambda j: j["started_at"])
    starts = sorted(j["started_at"] for j in jobs if j["started_at"])
    gaps = []
    for job in ended:
        following = next((at for at in starts if at > job["finished_at"]), None)
        if following is not None:
            gaps.append((following - job["finished_at"]).total_seconds())
    return sum(gaps) / len(gaps) if gaps else JOB_GAP_SECONDS


def format_duration(seconds: float | None) -> str | None:
    """62 → '1m 02s', 3723 → '1h 02m 03s', 9 → '9s' (None stays None)."""
    return None if seconds is None else format_eta(seconds, compact=True)
