"""What is kept of a backtest to look at later: metrics, curves small enough to draw, trades.

`backtest_record` backtests one configuration on candles and returns it in the form
`trad.store.backtests` stores: the equity and its drawdown at ≤ 2,000 points (LTTB, the
extremes kept), the candles in ≤ 2,000 bars for the chart's first view, the trades, and for
each walk-forward fold its out-of-sample window backtested again with the parameters the
fold chose (its equity segment and trades). Backtests are deterministic, so this is exactly
what the search and the validation saw.

Size, whatever the candle count: ~250 kB of curves and bars, plus the trades — at most
MAX_STORED_TRADES rows (~130 bytes each); a backtest that made more keeps its first ones
and says how many it made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from trad.backtest.downsample import MAX_POINTS, candle_bars, drawdown, equity_extremes, equity_points, lttb_indices
from trad.backtest.engine import BacktestEngine, BacktestResult
from trad.optimize import score_metrics
from trad.optimize.space import plain
from trad.store.backtests import STORED_COLUMNS, TRADE_FIELDS
from trad.strategies import get_strategy
from trad.training.validation import backtest_work

MAX_STORED_TRADES = 100_000
MIN_FOLD_POINTS = 50
# A fold segment's fixed cost in candles of backtest work: the backtest, its trades table, trade
# rows and equity curve. 101 segments of 8,640 candles took 3.3–5.7 ms each at 44–54 ns a candle
# here: 53,000–106,000 candles beyond their own.
FOLD_SEGMENT_CANDLES = 60_000
INITIAL_EQUITY = 10_000.0


@dataclass
class BacktestRecord:
    """One configuration's backtest, ready to store: plain JSON-able values and trade frames by fold
    (0 the whole range, n the out-of-sample window of fold n)."""

    strategy: str
    symbol: str
    timeframe: str
    params: dict[str, Any]
    objective: str
    score: float | None
    settings: dict[str, float]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    candles: int
    metrics: dict[str, Any]
    equity: dict[str, list]
    overview: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    trades: dict[int, pd.DataFrame] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The stored columns of the backtest (trades aside)."""
        values = {name: getattr(self, name) for name in STORED_COLUMNS}
        values.update(data_start=self.data_start.to_pydatetime(), data_end=self.data_end.to_pydatetime())
        return values


@dataclass(frozen=True)
class TrainedConfiguration:
    """A job's winner: saved with its backtest in the transaction that ends the job."""

    strategy: str
    symbol: str
    timeframe: str
    params: dict[str, Any]
    objective: str
    score: float | None
    metrics: dict[str, Any]
    validation: dict[str, Any] | None
    data_start: datetime
    data_end: datetime
    backtest: BacktestRecord


def run_configuration(data: pd.DataFrame, strategy: str, params: Mapping[str, Any],
                      settings: Mapping[str, float]) -> tuple[dict[str, Any], BacktestResult]:
    """The strategy's validated parameters and its backtest on `data` (settings: fee_rate,
    slippage, position_size_pct)."""
    instance = get_strategy(strategy)(**params)
    engine = BacktestEngine(fee_rate=settings.get("fee_rate", 0.0005), slippage=settings.get("slippage", 0.0),
                            initial_equity=INITIAL_EQUITY)
    result = engine.run_backtest(data, instance, position_size_pct=settings.get("position_size_pct", 1.0))
    return dict(instance.params), result


def backtest_record(data: pd.DataFrame, *, strategy: str, symbol: str, timeframe: str, params: Mapping[str, Any],
                    settings: Mapping[str, float], objective: str, min_trades: int,
                    validation: Mapping[str, Any] | None = None) -> BacktestRecord:
    """Backtest `params` on all of `data` and on each fold's out-of-sample window of `validation`
    (a walk-forward summary, as `validate_walk_forward` returns it)."""
    used, result = run_configuration(data, strategy, params, settings)
    metrics = {name: plain(value) for name, value in result.metrics.items()}
    times = _seconds(data["timestamp"])
    engine_settings = {"fee_rate": float(settings.get("fee_rate", 0.0005)),
                       "slippage": float(settings.get("slippage", 0.0)),
                       "position_size_pct": float(settings.get("position_size_pct", 1.0)),
                       "initial_equity": INITIAL_EQUITY}
    record = BacktestRecord(
        strategy=strategy, symbol=symbol, timeframe=timeframe, params=used, objective=objective,
        score=score_metrics(metrics, objective, min_trades), settings=engine_settings,
        data_start=data["timestamp"].iloc[0], data_end=data["timestamp"].iloc[-1], candles=len(data),
        metrics=metrics, equity=equity_curve(times, result.equity), overview=candle_overview(data, times))
    record.trades[0] = trade_rows(result.trades)
    folds = [f for f in (validation or {}).get("folds", []) if f.get("params")]
    for fold in folds:
        record.folds.append(_fold_segment(data, times, strategy, settings, fold,
                                          max(MIN_FOLD_POINTS, MAX_POINTS // len(folds)), record))
    return record


def record_work(candles: int, test_windows: Sequence[int]) -> int:
    """The work of `backtest_record` in candles (see `trad.training.validation.backtest_work`): the
    whole series backtested and its equity curve drawn, two to two and a half backtests' time
    on 900,000 candles here, and each fold's test window backtested again with its trades table
    and equity curve, FOLD_SEGMENT_CANDLES more."""
    return 2 * backtest_work(candles) + sum(test + FOLD_SEGMENT_CANDLES for test in test_windows)


def equity_curve(times: np.ndarray, equity: np.ndarray, n_out: int = MAX_POINTS) -> dict[str, list]:
    """Equity and drawdown (fraction of the running peak) at ≤ n_out points, Unix seconds."""
    chosen = equity_points(equity, n_out)
    return {"time": times[chosen].tolist(), "equity": np.round(equity[chosen], 4).tolist(),
            "drawdown": np.round(drawdown(equity)[chosen], 6).tolist()}


def candle_overview(data: pd.DataFrame, times: np.ndarray) -> dict[str, Any]:
    """The candles as ≤ 2,000 bars (`per_bar` candles each), for the chart's first view."""
    columns = [data[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")]
    bars = candle_bars(times, *columns)
    return {key: (value.tolist() if isinstance(value, np.ndarray) else value) for key, value in bars.items()}


def trade_rows(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades as stored (the first MAX_STORED_TRADES), with the candles each was held."""
    kept = trades.iloc[:MAX_STORED_TRADES]
    rows = kept[list(TRADE_FIELDS[:-1])].reset_index(drop=True)
    rows["candles_held"] = (kept["exit_index"].to_numpy() - kept["entry_index"].to_numpy() + 1).astype("int64")
    return rows


def _fold_segment(data: pd.DataFrame, times: np.ndarray, strategy: str, settings: Mapping[str, float],
                  fold: Mapping[str, Any], n_out: int, record: BacktestRecord) -> dict[str, Any]:
    """One fold's out-of-sample window backtested with the fold's parameters: its summary, metrics and
    equity segment; its trades go into `record.trades[fold]`."""
    # Whole seconds, as the times are: searching them with floats copied all of them per fold.
    bounds = [math.ceil(pd.Timestamp(fold[key]).timestamp()) for key in ("test_start", "test_end")]
    first, last = np.searchsorted(times, np.array(bounds, dtype=times.dtype))
    test = data.iloc[first:last].reset_index(drop=True)  # the fold's test window: start <= time < end
    summary = {key: fold.get(key) for key in ("fold", "train_start", "train_end", "test_start", "test_end",
                                              "params", "in_sample_score", "out_of_sample_score")}
    if len(test) < 2:
        return {**summary, "candles": len(test), "metrics": {}, "equity": {"time": [], "equity": []}}
    _, result = run_configuration(test, strategy, fold["params"], settings)
    record.trades[int(fold["fold"])] = trade_rows(result.trades)
    chosen = lttb_indices(result.equity, n_out, keep=equity_extremes(result.equity))
    return {**summary, "candles": len(test),
            "metrics": {name: _finite(plain(value)) for name, value in result.metrics.items()},
            "equity": {"time": _seconds(test["timestamp"])[chosen].tolist(),
                       "equity": np.round(result.equity[chosen], 4).tolist()}}


def _seconds(timestamps: pd.Series) -> np.ndarray:
    """Candle times as Unix seconds (int64)."""
    return timestamps.dt.as_unit("s").astype("int64").to_numpy()


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
