"""Walk-forward validation of a search's best configurations.

Rolling folds over the candles: train on `train_window_days`, skip `gap_days`, test on the
next `test_window_days`, then move forward by one test window. In each fold the candidate
scoring best on the train window (chosen from the search's top configurations, using train
data only) is scored on the test window: that is the fold's out-of-sample score.
Degradation = mean in-sample score − mean out-of-sample score.

Each window is backtested on its own candles, so indicators start cold at its beginning.
Test windows are short, so a fold is scored with `min_trades` = 1 (its trade count is
reported beside the score).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from trad.optimize import Evaluation, evaluate_config
from trad.training.forecast import BACKTEST_OVERHEAD_CANDLES

FOLD_MIN_TRADES = 1

FoldProgress = Callable[[float, int, int, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: train and test windows as half-open time ranges."""

    number: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def walk_forward_folds(first: pd.Timestamp, last: pd.Timestamp, train_days: float,
                       test_days: float, gap_days: float) -> list[Fold]:
    """Every fold whose test window ends by `last` (inclusive of the last candle)."""
    train, test, gap = (pd.Timedelta(days=d) for d in (train_days, test_days, gap_days))
    if train <= pd.Timedelta(0) or test <= pd.Timedelta(0) or gap < pd.Timedelta(0):
        return []
    folds, start = [], first
    end_of_data = last + pd.Timedelta(microseconds=1)
    while start + train + gap + test <= end_of_data:
        folds.append(Fold(len(folds) + 1, start, start + train, start + train + gap,
                          start + train + gap + test))
        start += test
    return folds


def window(data: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Candles with start <= timestamp < end (timestamps sorted: found by binary search, not by
    comparing every candle, so a fold's windows cost their own size, not the series')."""
    stamps = data["timestamp"]
    first, last = stamps.searchsorted(start, side="left"), stamps.searchsorted(end, side="left")
    return data.iloc[first:last].reset_index(drop=True)


def window_candles(stamps: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """How many of the (sorted) timestamps fall in start <= timestamp < end."""
    return int(stamps.searchsorted(end, side="left") - stamps.searchsorted(start, side="left"))


def backtest_work(candles: int) -> int:
    """The work of one backtest in candles, its fixed cost counted as BACKTEST_OVERHEAD_CANDLES more."""
    return candles + BACKTEST_OVERHEAD_CANDLES


def fold_candles(data: pd.DataFrame, train_days: float, test_days: float,
                 gap_days: float) -> list[tuple[int, int]]:
    """The candles of every fold's train window and test window."""
    if not len(data):
        return []
    stamps = data["timestamp"]
    folds = walk_forward_folds(stamps.iloc[0], stamps.iloc[-1], train_days, test_days, gap_days)
    return [(window_candles(stamps, f.train_start, f.train_end), window_candles(stamps, f.test_start, f.test_end))
            for f in folds]


def validation_work(folds: Sequence[tuple[int, int]], candidates: int) -> int:
    """The work of a walk-forward validation of `folds` (their `fold_candles`; see
    `backtest_work`): every train window once per candidate, every test window once."""
    if candidates < 1:
        return 0
    return sum(candidates * backtest_work(train) + backtest_work(test) for train, test in folds)


def validate_walk_forward(data: pd.DataFrame, strategy: str, candidates: Sequence[Mapping[str, Any]],
                          engine_settings: Mapping[str, Any], objective: str, train_days: float,
                          test_days: float, gap_days: float,
                          progress: FoldProgress | None = None) -> dict[str, Any]:
    """Score the candidates fold by fold; returns folds, mean, std and degradation."""
    folds = walk_forward_folds(data["timestamp"].iloc[0], data["timestamp"].iloc[-1],
                               train_days, test_days, gap_days) if len(data) else []
    summary: dict[str, Any] = {"train_window_days": train_days, "test_window_days": test_days,
                               "gap_days": gap_days, "candidates": len(candidates), "folds": []}
    if not folds or not candidates:
        summary["skipped"] = ("no candidate configuration" if not candidates else
                              "the candles span too little time for one train + gap + test window")
        return _summarise(summary)
    work = validation_work(fold_candles(data, train_days, test_days, gap_days), len(candidates))
    done = 0

    def run(frame: pd.DataFrame, params: Mapping[str, Any], fold: Fold, role: str):
        nonlocal done

        def candles(processed: int, total: int, stage: str) -> None:
            if progress is not None:
                share = (done + backtest_work(len(frame)) * (processed / total if total else 1.0)) / work
                progress(100.0 * min(1.0, share), processed, total, stage,
                         {"fold": fold.number, "folds": len(folds), "window": role})
        try:
            if len(frame) < 2:
                return Evaluation(0, dict(params), None)
            return evaluate_config(frame, strategy, params, engine_settings, objective, FOLD_MIN_TRADES,
                                   candles)
        finally:
            done += backtest_work(len(frame))

    for fold in folds:
        train = window(data, fold.train_start, fold.train_end)
        test = window(data, fold.test_start, fold.test_end)
        in_sample = []
        for params in candidates:
            in_sample.append(run(train, params, fold, "train"))
        chosen = max(in_sample, key=lambda e: float("-inf") if e.score is None else e.score)
        out = run(test, chosen.params, fold, "test")
        summary["folds"].append({
            "fold": fold.number, "train_start": fold.train_start.isoformat(),
            "train_end": fold.train_end.isoformat(), "test_start": fold.test_start.isoformat(),
            "test_end": fold.test_end.isoformat(), "train_candles": len(train),
            "test_candles": len(test), "params": chosen.params, "in_sample_score": chosen.score,
            "out_of_sample_score": out.score, "out_of_sample_trades": out.metrics.get("n_trades"),
            "out_of_sample_return": out.metrics.get("total_return")})
    return _summarise(summary)


def _summarise(summary: dict[str, Any]) -> dict[str, Any]:
    """Mean and std of the out-of-sample scores and the in-sample → out-of-sample degradation."""
    oos = [f["out_of_sample_score"] for f in summary["folds"] if f["out_of_sample_score"] is not None]
    ins = [f["in_sample_score"] for f in summary["folds"] if f["in_sample_score"] is not None]
    summary["scored_folds"] = len(oos)
    summary["mean_out_of_sample_score"] = statistics.fmean(oos) if oos else None
    summary["std_out_of_sample_score"] = statistics.pstdev(oos) if len(oos) > 1 else (0.0 if oos else None)
    summary["mean_in_sample_score"] = statistics.fmean(ins) if ins else None
    summary["degradation"] = (summary["mean_in_sample_score"] - summary["mean_out_of_sample_score"]
                              if ins and oos else None)
    return summary
