"""Trade simulation: from entry signals to filled trades, without a per-candle loop.

A trade's exit depends only on its own entry (entry price, stop, target, horizon), never
on equity. So the exits of a batch of candidate entries are found together, with
vectorised scans of the candles after each entry; the simulation then walks the
candidates in time order, taking one, jumping to the first candidate at or after its
exit candle, and so on. Per-candle Python work is nil; per-trade work is a few steps.

Exit rules, checked on every candle k from the entry candle e on, in this order:
stop (low ≤ stop → fill min(open, stop)), target (high ≥ target → fill max(open, target)),
exit signal from candle k−1 ≥ e (fill at open of k), max hold (k = e + max_hold − 1 →
fill at close of k); a trade still open at the last candle is closed at its close.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from trad.strategies.base import Signals
from trad.strategies.progress import StageProgress

EXIT_REASONS = ("stop", "target", "signal", "max_hold", "end")
STOP, TARGET, SIGNAL, MAX_HOLD, END = range(len(EXIT_REASONS))
BATCH = 512          # candidate entries whose exits are searched together
SCAN = 64            # candles scanned per candidate in the first pass; ×GROWTH in each next one
GROWTH = 8
MAX_CELLS = 1 << 19  # candidates × candles of one vectorised pass (bounds its memory)


@dataclass(frozen=True)
class Candles:
    """The price arrays of the candles, float64."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


@dataclass
class Fills:
    """Filled trades in time order: candle indices, fill prices (after slippage), exit reasons."""

    entry_index: np.ndarray
    exit_index: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    reason: np.ndarray


@dataclass
class _Exits:
    """Per candidate: exit candle (-1 while unknown), fill price, reason, scan progress."""

    candle: np.ndarray
    price: np.ndarray
    reason: np.ndarray
    scanned_to: np.ndarray


@dataclass
class _Candidates:
    """Every entry signal that could become a trade, with its levels and exit bound."""

    entry: np.ndarray
    price: np.ndarray
    stop: np.ndarray
    target: np.ndarray
    horizon: np.ndarray
    held_to_max: np.ndarray
    signal_exit: np.ndarray
    limit: np.ndarray
    valid: np.ndarray


def simulate_trades(candles: Candles, signals: Signals, slippage: float,
                    progress: StageProgress) -> Fills:
    """The trades the signals make: one position at a time, signals during a trade ignored."""
    cand = _candidates(candles, signals, slippage)
    count = len(cand.entry)
    exits = _Exits(candle=np.full(count, -1, dtype=np.int64), price=np.zeros(count),
                   reason=np.zeros(count, dtype=np.int8), scanned_to=cand.entry.copy())
    exit_of = [-1] * count
    valid = cand.valid.tolist()
    signal_at = (cand.entry - 1).tolist()
    taken: list[int] = []
    searched, i, report_at = 0, 0, progress.next_mark
    while i < count:
        if i >= searched:
            searched = min(count, i + BATCH)
            _resolve_batch(candles, cand, np.arange(i, searched), slippage, exits)
            exit_of[i:searched] = exits.candle[i:searched].tolist()
        if not valid[i]:
            i += 1
            continue
        if exit_of[i] < 0:
            _resolve_long_trade(candles, cand, i, slippage, exits)
            exit_of[i] = int(exits.candle[i])
        taken.append(i)
        if exit_of[i] >= report_at:
            progress.advance(exit_of[i])
            report_at = progress.next_mark
        i = bisect_left(signal_at, exit_of[i], i + 1)
    chosen = np.asarray(taken, dtype=np.int64)
    return Fills(entry_index=cand.entry[chosen], exit_index=exits.candle[chosen],
                 entry_price=cand.price[chosen], exit_price=exits.price[chosen],
                 reason=exits.reason[chosen])


def _candidates(candles: Candles, signals: Signals, slippage: float) -> _Candidates:
    """Entry signals before the last candle, with entry price, stop, target and exit bound."""
    n = len(candles.close)
    last = n - 1
    signal_at = np.flatnonzero(np.asarray(signals.entries, dtype=bool)[:last])
    entry = signal_at + 1
    price = candles.open[entry] * (1.0 + slippage)
    stop = np.full(len(entry), np.nan)
    if signals.stops is not None:
        stop = np.asarray(signals.stops, dtype=float)[signal_at]
    if signals.stop_distances is not None:
        stop = np.fmax(stop, price - np.asarray(signals.stop_distances, dtype=float)[signal_at])
    with np.errstate(invalid="ignore"):
        valid = ~(stop >= price)
    target = np.full(len(entry), np.nan)
    if signals.rr_ratio is not None:
        target = price + signals.rr_ratio * (price - stop)
    horizon = np.full(len(entry), last, dtype=np.int64)
    held_to_max = np.zeros(len(entry), dtype=bool)
    if signals.max_hold is not None:
        horizon = entry + int(signals.max_hold) - 1
        held_to_max = horizon <= last
        horizon = np.minimum(horizon, last)
    signal_exit = np.full(len(entry), n, dtype=np.int64)
    if signals.exits is not None:
        exit_signals = np.flatnonzero(np.asarray(signals.exits, dtype=bool)[:last])
        following = np.searchsorted(exit_signals, entry)
        found = following < len(exit_signals)
        signal_exit[found] = exit_signals[following[found]] + 1
    limit = np.minimum(horizon, signal_exit)
    return _Candidates(entry, price, stop, target, horizon, held_to_max, signal_exit, limit, valid)


def _resolve_batch(candles: Candles, cand: _Candidates, which: np.ndarray, slippage: float,
                   exits: _Exits) -> None:
    """Exits of candidates `which`, scanning all of them at once in growing windows.

    Stops when a pass would cost more than MAX_CELLS; the few candidates left (very long
    trades) are finished one by one if the walk takes them.
    """
    stop, target = cand.stop[which], cand.target[which]
    hit = np.full(len(which), -1, dtype=np.int64)
    done = np.ones(len(which), dtype=bool)
    if not (np.isnan(stop).all() and np.isnan(target).all()):
        begin, limit = cand.entry[which].copy(), cand.limit[which]
        pending, width = np.arange(len(which)), SCAN
        done[:] = False
        while len(pending) and len(pending) * width <= MAX_CELLS:
            span = min(width, int((limit[pending] - begin[pending]).max()) + 1)
            touch = _first_touch(candles, begin[pending], limit[pending], stop[pending],
                                 target[pending], span)
            hit[pending] = touch
            begin[pending] += span
            finished = (touch >= 0) | (begin[pending] > limit[pending])
            done[pending[finished]] = True
            pending, width = pending[~finished], width * GROWTH
        exits.scanned_to[which] = begin
    _book_exits(candles, cand, which[done], hit[done], slippage, exits)


def _first_touch(candles: Candles, start: np.ndarray, limit: np.ndarray, stop: np.ndarray,
                 target: np.ndarray, width: int) -> np.ndarray:
    """First candle in [start, min(limit, start+width−1)] touching stop or target; -1 if none."""
    columns = start[:, None] + np.arange(width)
    inside = columns <= limit[:, None]
    np.minimum(columns, len(candles.low) - 1, out=columns)
    touched = (candles.low[columns] <= stop[:, None]) | (candles.high[columns] >= target[:, None])
    touched &= inside
    first = touched.argmax(axis=1)
    return np.where(touched[np.arange(len(start)), first], start + first, -1)


def _resolve_long_trade(candles: Candles, cand: _Candidates, i: int, slippage: float,
                        exits: _Exits) -> None:
    """Exit of one trade that outlasted the batch scans: scan on in growing windows."""
    low, high = candles.low, candles.high
    stop, target, limit = cand.stop[i], cand.target[i], int(cand.limit[i])
    begin, width, hit = int(exits.scanned_to[i]), SCAN * GROWTH, -1
    while begin <= limit and hit < 0:
        end = min(limit, begin + width - 1)
        touched = (low[begin:end + 1] <= stop) | (high[begin:end + 1] >= target)
        first = int(touched.argmax())
        if touched[first]:
            hit = begin + first
        begin, width = end + 1, width * GROWTH
    _book_exits(candles, cand, np.array([i]), np.array([hit]), slippage, exits)


def _book_exits(candles: Candles, cand: _Candidates, which: np.ndarray, hit: np.ndarray,
                slippage: float, exits: _Exits) -> None:
    """Exit candle, fill price and reason of candidates whose first stop/target touch is known."""
    n = len(candles.close)
    touched = hit >= 0
    stop, target = cand.stop[which], cand.target[which]
    stopped = touched & (candles.low[np.maximum(hit, 0)] <= stop)
    horizon, signal_exit = cand.horizon[which], cand.signal_exit[which]
    by_signal = ~touched & (signal_exit <= horizon)
    held_max = cand.held_to_max[which]
    why = np.where(touched, np.where(stopped, STOP, TARGET),
                   np.where(by_signal, SIGNAL, np.where(held_max, MAX_HOLD, END)))
    candle = np.where(touched, hit, np.where(by_signal, signal_exit, horizon))
    safe = np.minimum(candle, n - 1)
    opens = candles.open[safe]
    price = np.where(why == STOP, np.minimum(opens, stop),
                     np.where(why == TARGET, np.maximum(opens, target),
                              np.where(why == SIGNAL, opens, candles.close[safe])))
    exits.candle[which] = candle
    exits.price[which] = price * (1.0 - slippage)
    exits.reason[which] = why
