#!/usr/bin/env python
"""Benchmark of the backtest engine: speed, progress-callback overhead, memory, and parity
with backtesting.py on the liquidity-sweep rules.

    .venv/bin/python scripts/bench/backtest.py            # 10k, 100k, 1M candles
    .venv/bin/python scripts/bench/backtest.py --quick    # 10k and 100k, fewer repeats
    .venv/bin/python scripts/bench/backtest.py --results scripts/bench/RESULTS-backtest.md

Prints a Markdown report (and writes it with --results).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trad.backtest import BacktestEngine  # noqa: E402
from trad.data.synthetic import synthetic_candles  # noqa: E402
from trad.strategies import STRATEGIES, LiquiditySweep, strategy_names  # noqa: E402
from trad.strategies.progress import StageProgress  # noqa: E402

SEED = 7
BEST_OF = 5
NOTES = """\
## How to read this

- *Speed*: candles per second of a whole `BacktestEngine.run_backtest` (signal
  generation, trade simulation, equity curve, metrics, trades DataFrame). Wall time on
  a machine shared with other test suites (load average in the header): single figures
  move by ±50 % between runs; the ratios, measured back to back, move less.
- *A search's episode*: an optimizer reads a backtest's metrics only; the trades table
  (a pandas frame of every trade) is built when first read — by Save Configuration and
  the ad-hoc backtests. Both sides timed alternately in one run, median of each.
- *Callback overhead*: the same backtest with a no-op `progress_callback` and without,
  in pairs (each side the best of 5 interleaved runs, alternating which goes first),
  CPU time; the median pair ratio − 1. The A/A column is the same measurement with no
  callback on either side: how far the method strays on this machine when nothing
  differs. On a busy shared machine that is about a percent either way, so the
  *direct cost* column replays exactly the reporting a backtest does (same calls, same
  trade exits) with and without the callback: that is what the callback adds.
- *Peak memory*: each strategy on 1M candles in a fresh process. tracemalloc peak is
  what the backtest allocates beyond the input frame; max RSS is the whole process
  (interpreter, numpy, pandas, generating the candles, the frame, the backtest).
- *backtesting.py*: the liquidity-sweep rules written as a backtesting.py `Strategy`
  (indicators in `init`, pending-sweep state in `next`, a market order with `sl`/`tp`,
  `commission=0.0005`, `finalize_trades=True`), on the same candles. A trade is
  *identical* when entry candle, entry price, exit candle and exit price all match.
  The one rule backtesting.py cannot express is the max-hold exit *at the close* of the
  last allowed candle: its closing orders always fill at the next open, so those exits
  land one candle later at that open. On candles whose open equals the previous close
  (the usual case on 24/7 crypto markets; the second row) that is the same price, so
  every trade matches in prices and differs only in that recorded exit candle. Two
  other accommodations, neither of which changes a trade: backtesting.py needs the
  target when the order is placed, before the fill, so its strategy reads the next
  open (the price its market order will fill at) to compute `entry + rr·(entry − stop)`
  and to skip entries at or below the stop; and it sizes in whole units, so it is given
  cash enough that no order is rejected (sizes and pnl are not compared).
"""


def continuous(data: pd.DataFrame) -> pd.DataFrame:
    """The same candles with every open equal to the previous close (as on 24/7 markets)."""
    out = data.copy()
    out.loc[out.index[1:], "open"] = out["close"].to_numpy()[:-1]
    out["high"] = out[["high", "open"]].max(axis=1)
    out["low"] = out[["low", "open"]].min(axis=1)
    return out


def seconds(run, repeats: int) -> float:
    """Median wall time of `repeats` calls of `run` (after one warm-up call)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def strategy_table(sizes: list[int], cell) -> list[str]:
    """A Markdown table: a row per candle count, a column per strategy, `cell(engine, data, strategy)`
    in each."""
    engine = BacktestEngine()
    lines = ["| candles | " + " | ".join(strategy_names()) + " |",
             "|---:|" + "---:|" * len(STRATEGIES)]
    for n in sizes:
        data = synthetic_candles(n, seed=SEED)
        cells = [cell(engine, data, STRATEGIES[name]()) for name in strategy_names()]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        del data
        gc.collect()
    return lines


def speed_table(sizes: list[int], repeats: dict[int, int]) -> list[str]:
    """Candles per second of every strategy at its default parameters, its trades table read."""
    def cell(engine: BacktestEngine, data: pd.DataFrame, strategy) -> str:
        taken = seconds(lambda: engine.run_backtest(data, strategy).trades, repeats[len(data)])
        trades = len(engine.run_backtest(data, strategy).trades)
        return f"{len(data) / taken / 1e6:.1f} M/s ({taken * 1e3:.1f} ms, {trades} trades)"

    return strategy_table(sizes, cell)


def episode_table(sizes: list[int], repeats: dict[int, int]) -> list[str]:
    """What a search's episode pays (the metrics; the trades table is built only when read)
    beside a full backtest whose trades are read, timed alternately in one run."""
    def cell(engine: BacktestEngine, data: pd.DataFrame, strategy) -> str:
        times = {"episode": [], "full": []}
        for i in range(max(7, 3 * repeats[len(data)])):
            for side in (("episode", "full") if i % 2 else ("full", "episode")):
                start = time.perf_counter()
                result = engine.run_backtest(data, strategy)
                if side == "full":
                    result.trades
                times[side].append(time.perf_counter() - start)
        episode, full = statistics.median(times["episode"]), statistics.median(times["full"])
        return f"{episode * 1e3:.2f} ms of {full * 1e3:.2f} ms ({full / episode:.2f}× as fast)"

    return strategy_table(sizes, cell)


def callback_overhead(n: int, pairs: int) -> list[str]:
    """Median over paired runs of time(with a no-op callback) / time(without) − 1.

    Each side of a pair is the best of BEST_OF runs, interleaved and alternating which goes
    first; times are CPU time of this process. The same measurement with no callback on
    either side (A/A) shows the noise floor of the machine. The direct cost replays the
    reporting a backtest does (same calls, same trade exits) with the callback and
    without: a low-noise measure of what the callback adds.
    """
    engine = BacktestEngine()
    data = synthetic_candles(n, seed=SEED)
    lines = [f"| strategy | with callback: median of {pairs} pairs | A/A (no callback on "
             "either side) | direct cost of reporting | calls per backtest |",
             "|---|---:|---:|---:|---:|"]
    for name in strategy_names():
        strategy = STRATEGIES[name]()
        noise, _ = _paired_ratio(engine, data, strategy, None, pairs)
        overhead, plain = _paired_ratio(engine, data, strategy, lambda d, t, s: None, pairs)
        calls = []
        result = engine.run_backtest(data, strategy, progress_callback=lambda *c: calls.append(c))
        direct = _reporting_seconds(n, result.trades.exit_index.tolist())
        lines.append(f"| {name} | {overhead * 100:+.2f} % | {noise * 100:+.2f} % | "
                     f"{direct * 1e6:.0f} µs = {direct / plain * 100:.2f} % | {len(calls)} |")
    return lines


def _paired_ratio(engine: BacktestEngine, data: pd.DataFrame, strategy, callback,
                  pairs: int) -> tuple[float, float]:
    """(median of best-of-BEST_OF time ratios − 1, median best time without callback)."""
    ratios, plain = [], []
    for i in range(pairs):
        times = {True: [], False: []}
        for k in range(BEST_OF):
            for with_callback in ((True, False) if (i + k) % 2 else (False, True)):
                start = time.process_time()
                engine.run_backtest(data, strategy,
                                    progress_callback=callback if with_callback else None)
                times[with_callback].append(time.process_time() - start)
        ratios.append(min(times[True]) / min(times[False]))
        plain.append(min(times[False]))
    return statistics.median(ratios) - 1, statistics.median(plain)


def _reporting_seconds(n: int, exits: list[int], repeats: int = 300) -> float:
    """CPU time a no-op callback adds to one backtest's progress reporting.

    Replays the reporting of both stages (same trade exits) with the callback and with
    None, and returns the difference per backtest.
    """
    def noop(done: int, total: int, stage: str) -> None:
        return None

    def replay(callback) -> float:
        start = time.process_time()
        for _ in range(repeats):
            signals = StageProgress(callback, n, "signals")
            signals.start()
            for fraction in (0.3, 0.6, 0.9):
                signals.advance_fraction(fraction)
            signals.finish()
            trades = StageProgress(callback, n, "trades")
            trades.start()
            report_at = trades.next_mark
            for done in exits:
                if done >= report_at:
                    trades.advance(done)
                    report_at = trades.next_mark
            trades.finish()
        return (time.process_time() - start) / repeats

    return max(0.0, min(replay(noop) for _ in range(3)) - min(replay(None) for _ in range(3)))


def memory_child(n: int, name: str) -> None:
    """(In a subprocess) peak memory of one backtest on n candles; prints JSON."""
    data = synthetic_candles(n, seed=SEED)
    strategy = STRATEGIES[name]()
    gc.collect()
    tracemalloc.start()
    BacktestEngine().run_backtest(data, strategy).trades
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"traced_peak": peak, "max_rss": rss,
                      "data_bytes": int(data.memory_usage(deep=True).sum())}))


def memory_table(n: int) -> list[str]:
    """Peak memory per strategy, each in a fresh process."""
    lines = [f"| strategy ({n:,} candles) | backtest allocations (tracemalloc peak) | "
             "whole process max RSS | candle frame |", "|---|---:|---:|---:|"]
    for name in strategy_names():
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), name],
                             capture_output=True, text=True, check=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"| {name} | {m['traced_peak'] / 2**20:.0f} MB | {m['max_rss'] / 2**20:.0f} MB "
                     f"| {m['data_bytes'] / 2**20:.0f} MB |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k candles, fewer repeats")
    parser.add_argument("--results", type=Path, help="also write the report to this file")
    parser.add_argument("--memory-child", nargs=2, metavar=("N", "STRATEGY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    repeats = {10_000: 5 if args.quick else 21, 100_000: 3 if args.quick else 11, 1_000_000: 3}
    report = [
        "# Backtest engine benchmark",
        "",
        f"`{' '.join(['scripts/bench/backtest.py'] + sys.argv[1:])}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
        f"pandas {pd.__version__}; synthetic 5m candles (seed {SEED}), default parameters, "
        f"fee 0.0005. Load average at start: {os.getloadavg()[0]:.2f}.",
        "",
        "## Speed (median wall time of one full backtest: signals, trades, equity, metrics)",
        "", *speed_table(sizes, repeats), "",
        "## A search's episode (metrics only) beside a full backtest whose trades are read",
        "", *episode_table(sizes, repeats), "",
        "## Progress-callback overhead (no-op callback, 100k candles, median of paired runs)",
        "", *callback_overhead(100_000, 7 if args.quick else 81), "",
    ]
    print("\n".join(report), flush=True)
    memory = memory_table(200_000 if args.quick else 1_000_000)
    parity = parity_report(100_000, quick=args.quick)
    tail = ["## Peak memory", "", *memory, "", *parity, "", NOTES]
    print("\n".join(tail), flush=True)
    if args.results:
        args.results.write_text("\n".join(report + tail) + "\n")


# ---------------------------------------------------------------- backtesting.py parity

def parity_report(n: int, quick: bool) -> list[str]:
    """The liquidity-sweep rules in backtesting.py on the same candles: speed and agreement."""
    try:
        from backtesting import Backtest  # noqa: F401
    except ImportError:
        return ["## backtesting.py", "", "backtesting is not installed (`pip install .[bench]`)."]
    lines = ["## Same rules in backtesting.py (liquidity_sweep, 100k candles)", "",
             "| candles | trades (trad / bt) | identical | max-hold exit one candle later "
             "(same price) | other | trad | backtesting.py | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    raw = synthetic_candles(n, seed=SEED)
    for label, data in (("synthetic", raw), ("continuous (open = previous close)", continuous(raw))):
        lines.append(_parity_row(label, data, quick))
    return lines


def _parity_row(label: str, data: pd.DataFrame, quick: bool) -> str:
    strategy = LiquiditySweep()
    engine = BacktestEngine(fee_rate=0.0005)
    ours = engine.run_backtest(data, strategy).trades
    trad_seconds = seconds(lambda: engine.run_backtest(data, strategy).trades, 3 if quick else 11)
    backtest = backtesting_py(data, strategy.params)
    theirs = run_quietly(backtest)._trades
    bt_seconds = seconds(lambda: run_quietly(backtest), 1 if quick else 3)
    same, late, late_same_price, other = compare_trades(ours, theirs, data)
    return (f"| {label} | {len(ours)} / {len(theirs)} | {same} | {late} ({late_same_price}) | {other} | "
            f"{trad_seconds * 1e3:.1f} ms | {bt_seconds:.2f} s | {bt_seconds / trad_seconds:.0f}× |")


def compare_trades(ours: pd.DataFrame, theirs: pd.DataFrame,
                   data: pd.DataFrame) -> tuple[int, int, int, int]:
    """Counts: identical trades; max-hold exits bt fills one candle later at the open (and of
    those, how many at our price); the rest."""
    opens = data["open"].to_numpy()
    theirs_by_entry = {int(t.EntryBar): t for t in theirs.itertuples()}
    same = late = late_same_price = 0
    for trade in ours.itertuples():
        bt = theirs_by_entry.get(int(trade.entry_index))
        if bt is None or not _same_price(bt.EntryPrice, trade.entry_price):
            continue
        exit_bar = int(bt.ExitBar)
        if exit_bar == trade.exit_index and _same_price(bt.ExitPrice, trade.exit_price):
            same += 1
        elif (trade.exit_reason == "max_hold" and exit_bar == trade.exit_index + 1
              and _same_price(bt.ExitPrice, opens[exit_bar])):
            late += 1
            late_same_price += _same_price(bt.ExitPrice, trade.exit_price)
    return same, late, late_same_price, max(len(ours), len(theirs)) - same - late


def _same_price(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-12, atol=0.0))


def backtesting_py(data: pd.DataFrame, params: dict):
    """A backtesting.py Backtest of the rules on the same candles (cash large enough that
    whole-unit sizing never rejects an order)."""
    from backtesting import Backtest

    frame = data.rename(columns=str.title).set_index(pd.DatetimeIndex(data["timestamp"]))
    frame = frame[["Open", "High", "Low", "Close", "Volume"]]
    return Backtest(frame, make_sweep_strategy(params), cash=1e9, commission=0.0005,
                    finalize_trades=True)


def run_quietly(backtest) -> pd.Series:
    """backtest.run() without its warnings; the stats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return backtest.run()


def make_sweep_strategy(params: dict):
    """liquidity_sweep written the backtesting.py way: indicators in init, state in next()."""
    from backtesting import Strategy

    lookback, depth = params["key_level_lookback"], params["pierce_depth"]
    spike, window = params["volume_spike_threshold"], params["reversal_candles"]
    rr, hold = params["rr_ratio"], params["max_hold_candles"]
    first = max(lookback, 20, 14)

    class Sweep(Strategy):
        def init(self):
            low, close = pd.Series(self.data.Low), pd.Series(self.data.Close)
            high, volume = pd.Series(self.data.High), pd.Series(self.data.Volume)
            previous = close.shift(1)
            tr = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()],
                           axis=1).max(axis=1)
            self.key_low = self.I(lambda: low.rolling(lookback).min().shift(1).fillna(-np.inf))
            self.atr = self.I(lambda: tr.rolling(14).mean().fillna(0.0))
            self.vol_mean = self.I(lambda: volume.rolling(20).mean().shift(1).fillna(np.inf))
            self.next_open = np.append(self.data.Open[1:], np.nan)  # the fill of a market order
            self.pending = None
            self.entry_bar = None

        def next(self):
            t = len(self.data) - 1
            closing = False
            if self.position and t - self.entry_bar + 1 >= hold:
                self.position.close()          # fills at the next open
                closing = True
            low, close = self.data.Low[-1], self.data.Close[-1]
            if t >= first and (low <= self.key_low[-1] - depth * self.atr[-1]
                               and self.data.Volume[-1] >= spike * self.vol_mean[-1]):
                self.pending = (t, self.key_low[-1])
            if self.pending is None:
                return
            sweep, level = self.pending
            if t > sweep + window - 1:
                self.pending = None
            elif close > level:
                self.pending = None
                if (not self.position or closing) and t + 1 < len(self.next_open):
                    stop = float(np.min(self.data.Low[sweep - len(self.data):]))
                    entry = self.next_open[t]
                    if entry > stop:
                        try:
                            self.buy(size=0.95, sl=stop, tp=entry + rr * (entry - stop))
                            self.entry_bar = t + 1
                        except ValueError:    # bt requires SL < current close < TP
                            pass

    return Sweep


if __name__ == "__main__":
    main()
