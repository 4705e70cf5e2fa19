"""The ETA of a training job: a forecast of time from the work left and the speed this run has shown.

The percentage's step weights (25/50/20/5) are not shares of time — Data Collection takes
well under a second, Optimization almost all of the job — so the ETA never follows the
percentage. Each step counts its own work and is timed on this very run of the job:

- Optimization, in episodes: left = planned − finished − Σ fractions of those in flight.
  Its speed is a `Pace`: wall seconds per episode over the recent past. Measured in wall
  time, it already holds how many processes run episodes and how well they share the
  machine; a resumed run times only its own episodes. The optimizer's own seconds per
  episode (the Bayesian model's grow with the results it learns) are fitted as a line in
  the number of results (`ModelCost`); the growth of that cost from here to the last
  episode is added, ÷ the processes (the others keep running episodes meanwhile). The
  Bayesian model's fits, seconds each past ~1,000 results, are kept out of the pace and
  forecast one by one (`FitCost`) at the result counts the search says they will come.
- Validation, in candles backtested: every fold's train window once per candidate and its
  test window once, each backtest counted BACKTEST_OVERHEAD_CANDLES more for its fixed cost,
  at the seconds per candle of this job's episodes (counted alike; one backtest at a time,
  as validation runs them; the median of the newest hundred, so one stalled backtest does
  not move it, or with several processes their fastest tenth, the backtests that ran alone),
  then at the speed validation itself shows.
- Save Configuration: the winner's backtest stored — the whole series backtested and its
  curves drawn, each fold's test window again (`trad.training.results.record_work`, in candles)
  — at validation's own speed once it has one, else the episodes'; plus SAVE_SECONDS of
  writing. Its forecast is fixed when the step begins and counted down.
- Data Collection: no forecast; the ETA stays empty until the search has shown its speed
  (`MIN_SIGNAL_SECONDS` of episodes).

Early stop (`target_score`, `patience`) cannot be foreseen: the forecast assumes the search
runs to its end. Pure: time is passed in (`now`, monotonic seconds), so tests drive it with
a fake clock.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

from trad.training.steps import OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION

MIN_MEMORY = 3.0          # s: the shortest memory of a Pace…
MIN_UNITS = 20            # …and it spans at least this many episodes' time
MEMORY_SHARE = 0.2        # a Pace remembers about the last fifth of its step's age
MAX_MEMORY = 30.0         # s: and at most about the last half-minute
MIN_SIGNAL_SECONDS = 1.0  # s of a step's work before its speed is trusted
SAVE_SECONDS = 0.3        # s: the trained configuration, its trades and curves and the final state, written
# A backtest's fixed cost (strategy, frame and metrics set-up) in candles of its per-candle work.
# Validating 101 folds × 6 backtests of a 900,000-candle series in one process took 0.5–1.5 ms a
# backtest beyond 41–75 ns a candle (three strategies, two runs each): 12,000–20,000 candles.
# (37,000–48,000 while every backtest also built its trades table, which a search never reads.)
BACKTEST_OVERHEAD_CANDLES = 15_000
# The backtests' seconds per candle: the median over this many of the newest episodes. One
# backtest stalled by the machine (a 150 ms one among 11 ms ones) moves a mean of the last ten
# by twice; it does not move the median of a hundred.
CANDLE_SPEED_EPISODES = 101
# With several processes running episodes their backtests share the machine, and validation,
# one backtest at a time, runs faster: its speed is read from the fastest tenth of theirs, those
# that ran while the others waited (two processes on two cores here: their median backtest took
# 79–110 ms, validation ran at the speed of 60 ms ones).
SHARED_SPEED_QUANTILE = 0.1
MIN_FIT_RESULTS = 50      # model fits of fewer results are mostly fixed cost: not used to project
FIT_HISTORY = 4           # the newest fits the projection of fit cost is drawn from


class Pace:
    """Seconds per unit of work from samples of the work done, weighted toward the recent past.

    Time and work between samples are summed with a weight exp(−age / memory), memory =
    MEMORY_SHARE · the pace's age, at least MIN_MEMORY s and `min_units` units' time, at most
    MAX_MEMORY s: a machine that slows down or speeds up is followed within seconds (replayed
    on searches recorded on this shared machine, whose speed moved by up to 4× within a job,
    shorter memories did better than longer ones), while one slow episode is averaged away.
    """

    def __init__(self, min_memory: float = MIN_MEMORY, memory_share: float = MEMORY_SHARE,
                 max_memory: float = MAX_MEMORY, min_units: float = 0.0) -> None:
        self.min_memory = min_memory
        self.memory_share = memory_share
        self.max_memory = max_memory
        self.min_units = min_units
        self.started: float | None = None
        self.done = 0.0
        self._last = 0.0
        self._seconds = 0.0
        self._work = 0.0
        self._position = 0.0  # Σ weight · work · where it was done: the centre of the memory

    def add(self, now: float, done: float) -> None:
        """The work done so far (units, cumulative) at monotonic time `now`."""
        if self.started is None:
            self.started, self._last, self.done = now, now, done
            return
        elapsed = now - self._last
        if elapsed <= 0:
            return  # counted with the next sample that moves the clock
        memory = max(self.min_memory, self.memory_share * (now - self.started),
                     self.min_units * (self.seconds_per_unit() or 0.0))
        decay = math.exp(-elapsed / min(self.max_memory, memory))
        work = max(0.0, done - self.done)
        self._seconds = self._seconds * decay + elapsed
        self._work = self._work * decay + work
        self._position = self._position * decay + work * (self.done + done) / 2
        self._last, self.done = now, max(self.done, done)

    def age(self, now: float) -> float:
        """Seconds since the first sample (0 before any)."""
        return 0.0 if self.started is None else now - self.started

    def seconds_per_unit(self) -> float | None:
        """The recent seconds per unit of work; None before any work was seen."""
        return self._seconds / self._work if self._work > 0 else None

    def lag(self) -> float:
        """How many units ago, on average, the work that set the pace was done."""
        return self.done - self._position / self._work if self._work > 0 else 0.0


class ModelCost:
    """The optimizer's own seconds per episode (model fits aside) as a line a + b·n in the
    results n it has learnt, by least squares over every finished episode; only its growth
    (b ≥ 0) is projected, the pace already holds the current cost."""

    def __init__(self) -> None:
        self._n = 0
        self._sum_x = self._sum_y = self._sum_xx = self._sum_xy = 0.0

    def add(self, results: int, seconds: float) -> None:
        """The optimizer spent `seconds` on an episode after learning `results` results."""
        self._n += 1
        self._sum_x += results
        self._sum_y += seconds
        self._sum_xx += results * results
        self._sum_xy += results * seconds

    def slope(self) -> float:
        """b: seconds per episode added by each further result (0 when flat or unknown)."""
        spread = self._n * self._sum_xx - self._sum_x ** 2
        if self._n < 3 or spread <= 0:
            return 0.0
        return max(0.0, (self._n * self._sum_xy - self._sum_x * self._sum_y) / spread)

    def growth(self, episodes: float, lag: float = 0.0) -> float:
        """Seconds the next `episodes` episodes cost beyond the cost of one `lag` episodes ago
        (the pace's): Σ b·(k + lag)."""
        if episodes <= 0:
            return 0.0
        return self.slope() * episodes * ((episodes + 1) / 2 + max(0.0, lag))


class FitCost:
    """Seconds of one model fit as c·n^p in the results n it learns, from the fits seen so far.

    p is the log-log slope over the last FIT_HISTORY fits of at least MIN_FIT_RESULTS results
    (smaller ones are all overhead), kept within 1–3; 2 until two such fits are known. c is
    their geometric mean at that p, so the newest fits (and the machine's speed now) set it.
    """

    def __init__(self) -> None:
        self.fits: list[tuple[int, float]] = []

    def add(self, results: int, seconds: float) -> None:
        """A fit of `results` results took `seconds`."""
        if results >= MIN_FIT_RESULTS and seconds > 0:
            self.fits.append((results, seconds))
            del self.fits[:-FIT_HISTORY]

    def seconds(self, results: int) -> float:
        """The forecast seconds of a fit of `results` results (0 before any fit was seen)."""
        if not self.fits:
            return 0.0
        logs = [(math.log(n), math.log(t)) for n, t in self.fits]
        power = 2.0
        if len(logs) >= 2:
            mean_x = sum(x for x, _ in logs) / len(logs)
            mean_y = sum(y for _, y in logs) / len(logs)
            spread = sum((x - mean_x) ** 2 for x, _ in logs)
            if spread > 0:
                power = sum((x - mean_x) * (y - mean_y) for x, y in logs) / spread
        power = min(3.0, max(1.0, power))
        scale = sum(y - power * x for x, y in logs) / len(logs)
        return math.exp(scale + power * math.log(results))


class JobForecast:
    """Seconds left for one run of a job, step by step (see the module docstring)."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.step_started = 0.0
        self.processes = 1
        self.validation_candles = 0.0
        self.save_candles = 0.0
        self.save_seconds = SAVE_SECONDS  # fixed when Save Configuration begins
        self.total_episodes = 0
        self.episodes_before = 0.0
        self.episodes_done = 0.0
        self.validation_share = 0.0
        self.search = Pace(min_units=MIN_UNITS)
        self.validation = Pace()
        self.model = ModelCost()
        self.fit_cost = FitCost()
        self.planned_fits: list[int] = []
        self._fits_seen = 0
        self._fit_seconds = 0.0     # seconds of every fit seen: the search's pace runs on a clock without them
        self._fit_uncharged = 0.0   # fit seconds not yet taken out of an episode's optimizer seconds
        self._candle_speeds: deque[float] = deque(maxlen=CANDLE_SPEED_EPISODES)

    def plan(self, processes: int, validation_candles: float, save_candles: float = 0.0) -> None:
        """How many processes run episodes, the candles validation will backtest (0: none) and
        those saving the winner's backtest will."""
        self.processes = max(1, int(processes))
        self.validation_candles = max(0.0, float(validation_candles))
        self.save_candles = max(0.0, float(save_candles))

    def begin(self, step: str, now: float) -> None:
        """A step begins."""
        self.step, self.step_started = step, now
        if step == SAVE_CONFIGURATION:
            self.save_seconds = self._save_left()

    def episodes(self, now: float, done: float, total: int) -> None:
        """Optimization: `done` episodes (finished + fractions in flight, resumed ones included) of `total`."""
        if self.search.started is None:
            self.episodes_before = done
        self.total_episodes = int(total)
        self.episodes_done = done
        self.search.add(now - self._fit_seconds, done - self.episodes_before)

    def model_fits(self, fits: list[tuple[int, float]], planned: list[int]) -> None:
        """The model fits so far (results, seconds) and the result counts of those to come."""
        self.planned_fits = planned
        for results, seconds in fits[self._fits_seen:]:
            self.fit_cost.add(results, seconds)
            self._fit_seconds += seconds
            self._fit_uncharged += seconds
        self._fits_seen = len(fits)

    def episode_finished(self, results: int, optimizer_seconds: float, backtest_seconds: float,
                         candles: int) -> None:
        """An episode ended: the optimizer's time on it after `results` results (model fits
        included), and its backtest of `candles` candles."""
        charged = min(self._fit_uncharged, optimizer_seconds)
        self._fit_uncharged -= charged
        self.model.add(results, optimizer_seconds - charged)
        if candles > 0 and backtest_seconds > 0:
            self._candle_speeds.append(backtest_seconds / (candles + BACKTEST_OVERHEAD_CANDLES))

    def seconds_per_candle(self) -> float | None:
        """Seconds per candle of one backtest run alone, from the newest CANDLE_SPEED_EPISODES
        episodes — their median, or with several processes the fastest tenth's bound
        (SHARED_SPEED_QUANTILE) — its fixed cost counted as BACKTEST_OVERHEAD_CANDLES more candles."""
        if not self._candle_speeds:
            return None
        if self.processes == 1:
            return statistics.median(self._candle_speeds)
        ordered = sorted(self._candle_speeds)
        return ordered[int(SHARED_SPEED_QUANTILE * (len(ordered) - 1))]

    def validation_progress(self, now: float, share: float) -> None:
        """Validation is `share` (0–1) of its candles done."""
        self.validation_share = max(self.validation_share, min(1.0, share))
        self.validation.add(now, self.validation_share * self.validation_candles)

    def seconds_left(self, now: float) -> float | None:
        """Seconds to the job's end, or None while there is no signal yet."""
        if self.step == OPTIMIZATION:
            search = self._search_left(now)
            return None if search is None else search + self._validation_left(now) + self._save_left()
        if self.step == VALIDATION:
            return self._validation_left(now) + self._save_left()
        if self.step == SAVE_CONFIGURATION:
            return max(0.0, self.save_seconds - (now - self.step_started))
        return None

    def _search_left(self, now: float) -> float | None:
        """Episodes left at the recent pace, the growth of the model's cost per episode, the fits to come."""
        pace = self.search.seconds_per_unit()
        if pace is None or self.search.age(now - self._fit_seconds) < MIN_SIGNAL_SECONDS:
            return None
        left = max(0.0, self.total_episodes - self.episodes_done)
        fits = sum(self.fit_cost.seconds(n) for n in self.planned_fits)
        return left * pace + self.model.growth(left, self.search.lag()) / self.processes + fits

    def _validation_left(self, now: float) -> float:
        """Seconds validation still needs: its own pace once it has one, else the episodes' candle speed."""
        candles_left = (1.0 - self.validation_share) * self.validation_candles
        if candles_left <= 0:
            return 0.0
        guess = self.seconds_per_candle() or 0.0
        own = self.validation.seconds_per_unit() if self.step == VALIDATION else None
        if own is None:
            return candles_left * guess
        trust = min(1.0, self.validation.age(now) / (self.validation.age(now) + MIN_SIGNAL_SECONDS))
        return candles_left * (trust * own + (1.0 - trust) * guess)

    def _save_left(self) -> float:
        """Seconds Save Configuration will take: its backtests at validation's speed per candle
        (the same windows) once it has one, else the episodes'; and the writes."""
        speed = self.validation.seconds_per_unit() or self.seconds_per_candle() or 0.0
        return self.save_candles * speed + SAVE_SECONDS


def format_eta(seconds: float, compact: bool = False) -> str:
    """41 → '41 s', 125 → '2 min 05 s', 3725 → '1 h 02 min': the largest unit not zero and the next;
    `compact` (the batch API's seed format) keeps every unit below it: 9 → '9s', 62 → '1m 02s',
    3723 → '1h 02m 03s'."""
    hours, rest = divmod(max(0, int(round(seconds))), 3600)
    minutes, secs = divmod(rest, 60)
    values = (hours, minutes, secs)
    units = ("h", "m", "s") if compact else (" h", " min", " s")
    largest = 0 if hours else 1 if minutes else 2
    shown = range(largest, 3 if compact else min(largest + 2, 3))
    return " ".join(f"{values[i]:{'d' if i == largest else '02d'}}{units[i]}" for i in shown)
