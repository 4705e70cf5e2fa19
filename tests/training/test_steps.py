"""The pure math of job progress."""

import pytest

from trad.training.steps import (OPTIMIZATION, SAVE_CONFIGURATION, VALIDATION, job_steps,
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
