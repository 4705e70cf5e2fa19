"""The ETA forecast, driven by a fake clock: steady, speeding up, slowing down, a Bayesian cost that grows."""

from __future__ import annotations

import pytest

from trad.training.forecast import (BACKTEST_OVERHEAD_CANDLES, SAVE_SECONDS, FitCost, JobForecast, Pace,
                                    format_eta)
from trad.training.steps import DATA_COLLECTION, OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION

CANDLES = 10_000


class Search:
    """A search of `total` episodes on a fake clock, reported as the optimizer reports it:
    in-flight fractions every 0.05 s, every finished episode with its times."""

    def __init__(self, total: int, processes: int = 1, validation_candles: float = 0.0,
                 done_before: int = 0, save_candles: float = 0.0) -> None:
        self.forecast = JobForecast()
        self.forecast.plan(processes, validation_candles, save_candles)
        self.forecast.begin(OPTIMIZATION, 0.0)
        self.total, self.processes = total, processes
        self.now, self.finished = 0.0, done_before
        self.fits: list[tuple[int, float]] = []
        self.forecast.episodes(0.0, done_before, total)

    def run(self, episodes: int, backtest: float, model=lambda results: 0.0, fits=None) -> None:
        """`episodes` more episodes of `backtest` s each (per process), the optimizer's time
        model(results) on each (serial), and any model fit due before one (`fits`: results → s)."""
        for _ in range(episodes // self.processes):
            for fraction in (0.25, 0.5, 0.75):
                self._report(self.now + fraction * backtest, self.finished + self.processes * fraction)
            self.now += backtest
            for _ in range(self.processes):
                seconds = model(self.finished)
                if fits and self.finished in fits:
                    self.fits.append((self.finished, fits[self.finished]))
                    seconds += fits[self.finished]
                self.now += seconds
                self.finished += 1
                planned = [n for n in sorted(fits or ()) if n >= self.finished]
                self.forecast.model_fits(self.fits, planned)
                self.forecast.episode_finished(self.finished, seconds, backtest, CANDLES)
                self.forecast.episodes(self.now, self.finished, self.total)

    def _report(self, now: float, done: float) -> None:
        self.forecast.episodes(now, done, self.total)

    def eta(self) -> float | None:
        left = self.forecast.seconds_left(self.now)
        return None if left is None else left - SAVE_SECONDS


def test_no_eta_before_the_search_has_shown_its_speed():
    forecast = JobForecast()
    forecast.begin(DATA_COLLECTION, 0.0)
    assert forecast.seconds_left(0.5) is None
    search = Search(total=100)
    search.run(5, backtest=0.1)
    assert search.eta() is None  # 0.5 s of episodes: not yet a signal


def test_a_steady_search_is_forecast_exactly():
    search = Search(total=200)
    search.run(50, backtest=0.1)
    assert search.eta() == pytest.approx(150 * 0.1, rel=0.01)


def test_episodes_in_flight_move_the_forecast_between_episodes():
    search = Search(total=20)
    search.run(4, backtest=1.0)
    search.forecast.episodes(4.5, 4.5, 20)
    assert search.forecast.seconds_left(4.5) - SAVE_SECONDS == pytest.approx(15.5, rel=0.02)


def test_two_processes_are_seen_in_the_wall_time():
    search = Search(total=400, processes=2)
    search.run(100, backtest=0.1)  # two episodes every 0.1 s
    assert search.eta() == pytest.approx(300 * 0.05, rel=0.02)


@pytest.mark.parametrize("before, after", [(0.2, 0.1), (0.1, 0.2)], ids=["speeding up", "slowing down"])
def test_a_change_of_speed_is_followed_within_seconds(before, after):
    search = Search(total=1000)
    search.run(int(20 / before), backtest=before)
    search.run(int(10 / after), backtest=after)  # 10 s at the new speed
    assert search.eta() == pytest.approx((1000 - search.finished) * after, rel=0.2)
    search.run(int(10 / after), backtest=after)
    assert search.eta() == pytest.approx((1000 - search.finished) * after, rel=0.1)


def test_one_slow_episode_is_averaged_away():
    search = Search(total=500)
    search.run(100, backtest=0.1)
    search.run(1, backtest=0.5)  # five times the others, once
    search.run(2, backtest=0.1)
    assert search.eta() == pytest.approx((500 - 103) * 0.1, rel=0.15)


def test_a_resumed_run_is_timed_on_its_own_episodes():
    search = Search(total=300, done_before=200)
    search.run(30, backtest=0.1)
    assert search.eta() == pytest.approx(70 * 0.1, rel=0.01)


def test_a_model_cost_that_grows_with_the_results_is_projected():
    def model(results: int) -> float:
        return 0.001 + 0.00002 * results  # 1 ms, +20 µs per result learnt (Bayesian's update)

    search = Search(total=1000)
    search.run(250, backtest=0.01, model=model)
    truth = sum(0.01 + model(n) for n in range(250, 1000))
    current_cost_only = (1000 - 250) * (0.01 + model(250))
    assert abs(search.eta() - truth) < 0.05 * truth
    assert abs(current_cost_only - truth) > 0.2 * truth  # what assuming the last episode's cost would miss


def test_model_fits_to_come_are_foreseen_from_those_seen():
    fits = {n: 2e-6 * n ** 2 for n in (60, 90, 135, 203, 305, 458, 687)}  # c·n²: 0.9 s at 687
    search = Search(total=800)
    search.run(250, backtest=0.01, fits=fits)
    truth = (800 - 250) * 0.01 + sum(seconds for n, seconds in fits.items() if n >= 250)
    assert search.eta() == pytest.approx(truth, rel=0.05)
    assert search.forecast.search.seconds_per_unit() == pytest.approx(0.01, rel=0.02)  # fits kept out of the pace


def test_the_cost_of_a_fit_follows_a_power_of_its_results():
    cost = FitCost()
    assert cost.seconds(500) == 0.0
    cost.add(20, 0.5)  # too small to tell anything: ignored
    cost.add(100, 0.01)
    assert cost.seconds(200) == pytest.approx(0.04)  # n² until a second fit is seen
    cost.add(200, 0.08)
    assert cost.seconds(400) == pytest.approx(0.64)  # n³, the steepest it is allowed
    cost.add(400, 0.2)
    assert 0.2 < cost.seconds(600) < 0.2 * 1.5 ** 3


def test_validation_is_forecast_from_the_episodes_speed_per_candle_then_its_own():
    episode_work = CANDLES + BACKTEST_OVERHEAD_CANDLES
    search = Search(total=100, validation_candles=10 * episode_work)  # as much work as 10 episodes
    search.run(50, backtest=0.1)
    assert search.eta() == pytest.approx(50 * 0.1 + 10 * 0.1, rel=0.02)
    forecast = search.forecast
    forecast.begin(VALIDATION, 100.0)
    forecast.validation_progress(100.0, 0.0)
    assert forecast.seconds_left(100.0) - SAVE_SECONDS == pytest.approx(1.0, rel=0.02)
    for step in range(1, 11):  # validation runs at a quarter of the speed the episodes showed
        forecast.validation_progress(100.0 + 0.2 * step, 0.025 * step)
    guess, own = 0.75 * 1.0, 0.75 * 8.0  # three quarters left, of 1 s by the episodes, 8 s by its own pace
    assert guess < forecast.seconds_left(102.0) - SAVE_SECONDS < own  # trusted more as it goes on
    for step in range(11, 31):
        forecast.validation_progress(100.0 + 0.2 * step, 0.025 * step)
    assert forecast.seconds_left(106.0) - SAVE_SECONDS == pytest.approx(0.25 * 8.0, rel=0.2)


def test_saving_is_forecast_from_its_backtests_then_counted_down_to_zero():
    episode_work = CANDLES + BACKTEST_OVERHEAD_CANDLES
    search = Search(total=100, validation_candles=10 * episode_work, save_candles=4 * episode_work)
    search.run(50, backtest=0.1)
    # 50 episodes, validation the work of 10, saving of 4 at the episodes' speed, and the writes
    assert search.forecast.seconds_left(search.now) == pytest.approx(5.0 + 1.0 + 0.4 + SAVE_SECONDS, rel=0.02)
    forecast = search.forecast
    forecast.begin(VALIDATION, 100.0)
    for step in range(41):  # validation runs at half the episodes' speed: 2 s
        forecast.validation_progress(100.0 + 0.05 * step, step / 40)
    forecast.begin(SAVE_CONFIGURATION, 102.0)  # its backtests are the same windows: at validation's speed
    assert forecast.seconds_left(102.0) == pytest.approx(0.8 + SAVE_SECONDS, rel=0.05)
    assert forecast.seconds_left(102.5) == pytest.approx(0.3 + SAVE_SECONDS, rel=0.1)
    assert forecast.seconds_left(104.0) == 0.0


def test_saving_without_a_plan_is_its_writes():
    forecast = JobForecast()
    forecast.begin(SAVE_CONFIGURATION, 10.0)
    assert forecast.seconds_left(10.0) == SAVE_SECONDS
    assert forecast.seconds_left(11.0) == 0.0


def test_a_pace_forgets_the_distant_past():
    pace = Pace(min_memory=1.0, memory_share=0.0)
    pace.add(0.0, 0.0)
    for t in range(1, 11):
        pace.add(float(t), t * 1.0)  # 1 unit/s for 10 s
    for t in range(11, 21):
        pace.add(float(t), 10 + (t - 10) * 4.0)  # then 4 units/s
    assert pace.seconds_per_unit() == pytest.approx(0.25, rel=0.01)


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (41, "41 s"), (125, "2 min 05 s"), (3725, "1 h 02 min")])
def test_the_eta_reads_as_a_duration(seconds, text):
    assert format_eta(seconds) == text


def test_one_stalled_backtest_does_not_move_the_forecast_of_validation():
    episode_work = CANDLES + BACKTEST_OVERHEAD_CANDLES
    search = Search(total=1000, validation_candles=100 * episode_work)  # as much work as 100 episodes
    search.run(300, backtest=0.01)
    before = search.forecast.seconds_left(search.now)
    search.forecast.episode_finished(301, 0.0, 0.15, CANDLES)  # the machine stalled one backtest 15×
    assert search.forecast.seconds_left(search.now) == pytest.approx(before, rel=0.01)


@pytest.mark.parametrize("processes, alone", [(1, False), (2, True)])
def test_validation_runs_at_the_speed_of_the_backtests_run_alone(processes, alone):
    episode_work = CANDLES + BACKTEST_OVERHEAD_CANDLES
    searches = [Search(total=600, processes=processes, validation_candles=v * episode_work) for v in (100, 0)]
    for search in searches:
        for index in range(100):  # most backtests shared the machine (0.15 s), a fifth ran alone (0.1 s)
            search.run(processes, backtest=0.1 if index % 5 == 0 else 0.15)
    # validation, one backtest at a time: at the speed of those run alone after two processes;
    # after one, the machine it shared is the machine validation will share
    backtest = 0.1 if alone else 0.15
    with_validation, without = (search.forecast.seconds_left(search.now) for search in searches)
    assert with_validation - without == pytest.approx(100 * backtest)
