"""The pure math of job progress and ETA."""

import pytest

from trad.training.steps import (OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION, EtaEstimator, job_steps,
                                 overall_progress, step_named)


def test_weights_of_the_four_steps():
    steps = job_steps(validation=True)
    assert [(s.number, s.name, s.weight) for s in steps] == [
        (1, "Data Collection", 0.25), (2, "Optimization", 0.5), (3, "Validation", 0.2),
        (4, "Save Configuration", 0.05)]


def test_optimization_at_60_percent_is_55_overall():
    steps = job_steps(validation=True)
    assert overall_progress(steps, step_named(steps, OPTIMIZATION), 60) == pytest.approx(55.0)


def test_weights_renormalise_without_validation():
    steps = job_steps(validation=False)
    assert [s.name for s in steps] == ["Data Collection", "Optimization", "Save Configuration"]
    assert sum(s.weight for s in steps) == pytest.approx(1.0)
    assert step_named(steps, OPTIMIZATION).weight == pytest.approx(0.5 / 0.8)
    with pytest.raises(KeyError):
        step_named(steps, VALIDATION)


def test_the_last_step_finished_is_exactly_100():
    steps = job_steps(validation=True)
    assert overall_progress(steps, step_named(steps, SAVE_CONFIGURATION), 100) == 100.0
    assert overall_progress(steps, step_named(steps, SAVE_CONFIGURATION), 250) == 100.0


def test_eta_needs_signal_then_follows_the_recent_rate():
    eta = EtaEstimator(window_seconds=10, min_progress=1, min_seconds=2)
    eta.add(0.0, 0.0)
    eta.add(1.0, 0.5)
    assert eta.eta_seconds() is None  # under 1 % and under 2 s
    for t in range(2, 30):
        eta.add(float(t), t * 0.5)  # 0.5 %/s
    assert eta.eta_seconds() == pytest.approx((100 - 14.5) / 0.5)
    for t in range(30, 45):
        eta.add(float(t), 14.5 + (t - 29) * 2.0)  # speeds up to 2 %/s
    assert eta.eta_seconds() == pytest.approx((100 - eta._samples[-1][1]) / 2.0)


def test_eta_is_zero_when_done():
    eta = EtaEstimator()
    eta.add(0.0, 10.0)
    eta.add(5.0, 100.0)
    assert eta.eta_seconds() == 0.0
