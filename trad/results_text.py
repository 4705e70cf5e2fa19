"""`trad results JOB_ID`: the best configuration's backtest in a terminal, and its trades as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from trad.db import Database
from trad.store import backtests as backtest_store
from trad.strategies import STRATEGIES
from trad.training.review import saved_backtest_id

METRICS = (("total_return", "total return", "%"), ("sharpe", "sharpe", ""), ("sortino", "sortino", ""),
           ("max_drawdown", "max drawdown", "%"), ("calmar", "calmar", ""), ("win_rate", "win rate", "%"),
           ("profit_factor", "profit factor", ""), ("n_trades", "trades", "n"), ("avg_trade_return", "avg trade", "%"),
           ("exposure", "exposure", "%"), ("sqn", "sqn", ""))


def _metric(value: Any, unit: str) -> str:
    if value is None:
        return "—" if unit else "inf"
    if unit == "%":
        return f"{100 * value:.2f} %"
    return f"{value:,}" if unit == "n" else f"{value:.4f}"


def results_text(db: Database, job_id: int) -> str:
    """The job's saved backtest: configuration, candles, metrics, trade summary, walk-forward."""
    backtest_id = saved_backtest_id(db, job_id)
    with db.connection() as conn:
        backtest = backtest_store.get_backtest(conn, backtest_id)
        trades = backtest_store.trade_summary(conn, backtest_id)
    strategy = STRATEGIES.get(backtest["strategy"])
    order = list(strategy.param_space.names) if strategy else []
    names = sorted(backtest["params"], key=lambda name: order.index(name) if name in order else len(order))
    params = " ".join(f"{name}={backtest['params'][name]}" for name in names)
    lines = [f"job {job_id}{'' if backtest['job_exists'] else ' (deleted)'} · {backtest['strategy']} "
             f"{backtest['symbol']} {backtest['timeframe']} · backtest {backtest_id}",
             f"parameters  {params}",
             f"candles     {backtest['candles']:,} ({backtest['data_start']:%Y-%m-%d %H:%M} → "
             f"{backtest['data_end']:%Y-%m-%d %H:%M} UTC) · fee {100 * backtest['settings']['fee_rate']:.3f} %"]
    lines += [f"{label:<14}{_metric(backtest['metrics'].get(key), unit)}" for key, label, unit in METRICS]
    lines.append(_trade_line(trades))
    lines.append(_walk_forward_line(backtest["folds"]))
    return "\n".join(lines)


def _trade_line(trades: Mapping[str, Any]) -> str:
    if not trades["trades"]:
        return "trade list  none"
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in trades["exit_reasons"].items())
    return (f"trade list  {trades['trades']:,}: won {trades['won']:,} ({100 * trades['won'] / trades['trades']:.1f} %), "
            f"best {100 * trades['best']:+.2f} %, worst {100 * trades['worst']:+.2f} %, "
            f"held {trades['held']:.1f} candles on average; exits: {reasons}")


def _walk_forward_line(folds: list[Mapping[str, Any]]) -> str:
    if not folds:
        return "walk-forward  none"
    scores = [f["out_of_sample_score"] for f in folds if f.get("out_of_sample_score") is not None]
    mean = f"{sum(scores) / len(scores):.4f}" if scores else "—"
    return f"walk-forward  {len(folds)} folds, {len(scores)} scored, mean out-of-sample {mean}"


def write_trades_csv(db: Database, job_id: int, path: Path) -> int:
    """Every trade of the job's saved backtest into `path` as CSV; returns how many."""
    backtest_id = saved_backtest_id(db, job_id)
    rows = -1  # the header
    with open(path, "wb") as out:
        for chunk in backtest_store.trades_csv(db, backtest_id, 0):
            out.write(chunk)
            rows += chunk.count(b"\n")
    return rows
