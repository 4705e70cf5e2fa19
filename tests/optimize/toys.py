"""A toy strategy and plain evaluate functions for optimizer tests (module level: picklable)."""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from trad.strategies.base import Param, ParamSpace, Strategy


class Toy(Strategy):
    """Never traded: only its parameter space and constraint matter here."""

    name = "toy"
    param_space = ParamSpace(
        Param("fast", "int", 5, 50, step=5, default=10),
        Param("slow", "int", 20, 200, step=10, default=50),
        Param("ratio", "float", 0.1, 1.0, step=0.1, default=0.5),
        Param("mode", "categorical", default="a", choices=("a", "b", "c")),
    )

    @classmethod
    def constraint_violation(cls, params: Mapping[str, Any]) -> str | None:
        return None if params["fast"] < params["slow"] else "fast must be < slow"


def bowl(params: dict[str, Any], candle_callback: Any = None) -> float:
    """A smooth score with its maximum 1.0 at fast=15, slow=40, ratio=0.2, mode='b'."""
    return (1.0 - (params["fast"] - 15) ** 2 / 100 - (params["slow"] - 40) ** 2 / 1000
            - (params["ratio"] - 0.2) ** 2 - (0.0 if params["mode"] == "b" else 0.5))


def paced_bowl(params: dict[str, Any], candle_callback: Any) -> float:
    """`bowl`, after a short backtest-like pass reporting candles 0 → 2·N."""
    n = 1_000
    for stage, offset in (("signals", 0), ("trades", n)):
        for done in range(0, n + 1, 250):
            time.sleep(0.004)
            candle_callback(offset + done, 2 * n, stage)
    return bowl(params)


def paced_process_id(params: dict[str, Any], candle_callback: Any) -> float:
    """`paced_bowl`'s pace; the score is the id of the process that ran it."""
    paced_bowl(params, candle_callback)
    return float(os.getpid())


def slow_episode(params: dict[str, Any], candle_callback: Any) -> float:
    """A long episode (~10 s) reporting candles every 20 ms: only a stop ends it early."""
    n = 500
    for done in range(n + 1):
        time.sleep(0.02)
        candle_callback(done, 2 * n, "signals")
    return bowl(params)


def silent_sleeper(params: dict[str, Any], candle_callback: Any) -> float:
    """An episode that never reports: only termination ends it early."""
    time.sleep(30)
    return bowl(params)


def crash(params: dict[str, Any], candle_callback: Any) -> float:
    """A worker that dies mid-episode."""
    os._exit(3)


def broken(params: dict[str, Any], candle_callback: Any) -> float:
    """An evaluation that raises."""
    raise ValueError(f"cannot evaluate {params}")


def quick_then_slow(params: dict[str, Any], candle_callback: Any) -> float:
    """Configurations with fast < 20 finish at once; the others run for ~10 s, reporting candles."""
    if params["fast"] < 20:
        candle_callback(0, 2, "signals")
        candle_callback(2, 2, "trades")
        return bowl(params)
    return slow_episode(params, candle_callback)


def quick_then_silent(params: dict[str, Any], candle_callback: Any) -> float:
    """Configurations with fast < 20 finish at once; the others sleep 30 s without reporting."""
    if params["fast"] < 20:
        return bowl(params)
    return silent_sleeper(params, candle_callback)


def paced(params: dict[str, Any], candle_callback: Any) -> float:
    """`bowl` after ~0.4 s of candle reports in both stages (2·N = 2000 candles)."""
    n = 1_000
    for stage, offset in (("signals", 0), ("trades", n)):
        for done in range(0, n + 1, 100):
            time.sleep(0.018)
            candle_callback(offset + done, 2 * n, stage)
    return bowl(params)
