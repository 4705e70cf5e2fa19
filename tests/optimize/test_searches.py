"""Grid, random and Bayesian search: reproducibility, constraints, early stop, resume."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from trad.errors import InvalidInput
from trad.optimize import (BayesianSearch, Evaluation, GridSearch, RandomSearch,
                           build_search_space, config_key, make_optimizer)
from trad.strategies.base import Param, ParamSpace, Strategy

from tests.optimize.toys import Toy, bowl

SMALL = {"fast": {"low": 5, "high": 25}, "slow": {"low": 20, "high": 60},
         "ratio": {"low": 0.1, "high": 0.3}}
CONSTRAINT = Toy.constraint_violation


def small_space(**overrides: Any):
    return build_search_space(Toy, {**SMALL, **overrides})


class Counting:
    """A plain evaluate function that remembers every configuration it was asked for."""

    def __init__(self, score=bowl):
        self.score = score
        self.asked: list[dict[str, Any]] = []

    def __call__(self, params, candle_callback=None):
        self.asked.append(dict(params))
        return self.score(params)


def searches(space, **options):
    return [GridSearch(space, constraint=CONSTRAINT, **options),
            RandomSearch(space, n_iterations=40, seed=1, constraint=CONSTRAINT, **options),
            BayesianSearch(space, n_iterations=25, seed=1, constraint=CONSTRAINT,
                           n_initial_points=8, **options)]


@pytest.mark.parametrize("search", searches(small_space()), ids=lambda s: s.name)
def test_every_search_respects_constraints_without_repeats(search):
    evaluate = Counting()
    result = search.run(evaluate)
    keys = [config_key(p) for p in evaluate.asked]
    assert len(keys) == len(set(keys)) == search.total_episodes == len(result.evaluations)
    assert all(p["fast"] < p["slow"] for p in evaluate.asked)
    assert [e.iteration for e in result.evaluations] == list(range(1, len(keys) + 1))
    assert result.best.score == max(e.score for e in result.evaluations)
    assert not result.stopped_early and not result.cancelled and result.stop_reason is None


def test_grid_finds_the_planted_best():
    result = GridSearch(small_space(), constraint=CONSTRAINT).run(Counting())
    assert result.best.params == {"fast": 15, "slow": 40, "ratio": 0.2, "mode": "b"}
    assert result.best.score == pytest.approx(1.0)
    assert len(result.evaluations) == 207


def test_random_search_is_reproducible_with_a_seed():
    space = small_space()
    first = RandomSearch(space, n_iterations=20, seed=42, constraint=CONSTRAINT)
    again = RandomSearch(space, n_iterations=20, seed=42, constraint=CONSTRAINT)
    other = RandomSearch(space, n_iterations=20, seed=43, constraint=CONSTRAINT)
    assert first.configurations == again.configurations != other.configurations
    evaluate = Counting()
    first.run(evaluate)
    assert evaluate.asked == first.configurations


def test_random_search_over_a_small_space_caps_to_its_size():
    space = small_space(fast={"choices": [10, 15]}, slow=40, ratio=0.2)
    search = RandomSearch(space, n_iterations=50, seed=0, constraint=CONSTRAINT)
    assert search.total_episodes == 6
    evaluate = Counting()
    result = search.run(evaluate)
    assert len({config_key(p) for p in evaluate.asked}) == 6 == len(result.evaluations)


def test_random_search_over_a_continuous_range():
    class Smooth(Strategy):
        name = "smooth"
        param_space = ParamSpace(Param("x", "float", 0.0, 1.0, default=0.5))

    search = RandomSearch(build_search_space(Smooth), n_iterations=30, seed=5)
    xs = [p["x"] for p in search.configurations]
    assert len(set(xs)) == 30 and all(0.0 <= x <= 1.0 and type(x) is float for x in xs)


def test_bayesian_search_is_reproducible_with_a_seed():
    space = small_space()

    def asked(seed):
        evaluate = Counting()
        BayesianSearch(space, n_iterations=16, seed=seed, constraint=CONSTRAINT,
                       n_initial_points=5).run(evaluate)
        return evaluate.asked

    assert asked(3) == asked(3)
    assert asked(3) != asked(4)


def test_bayesian_search_returns_plain_python_values():
    evaluate = Counting()
    result = BayesianSearch(small_space(), n_iterations=12, seed=0, constraint=CONSTRAINT,
                            n_initial_points=4).run(evaluate)
    for evaluation in result.evaluations:
        assert {type(v) for v in evaluation.params.values()} <= {int, float, str}
        assert type(evaluation.score) is float
    assert type(result.best.params["fast"]) is int


def test_bayesian_search_over_a_small_space_evaluates_it_whole():
    space = small_space(fast={"choices": [10, 15, 25]}, slow={"low": 20, "high": 30}, ratio=0.2, mode="b")
    search = BayesianSearch(space, n_iterations=20, seed=0, constraint=CONSTRAINT, n_initial_points=2)
    assert search.total_episodes == 5
    evaluate = Counting()
    search.run(evaluate)
    assert sorted((p["fast"], p["slow"]) for p in evaluate.asked) == [(10, 20), (10, 30), (15, 20),
                                                                       (15, 30), (25, 30)]


def test_bayesian_search_of_a_fixed_configuration():
    space = small_space(fast=10, slow=30, ratio=0.5, mode="a")
    evaluate = Counting()
    result = BayesianSearch(space, n_iterations=5, seed=0).run(evaluate)
    assert evaluate.asked == [{"fast": 10, "slow": 30, "ratio": 0.5, "mode": "a"}]
    assert len(result.evaluations) == 1


def test_bayesian_search_survives_invalid_scores():
    evaluate = Counting(lambda p: None if p["mode"] != "b" else bowl(p))
    result = BayesianSearch(small_space(), n_iterations=20, seed=2, constraint=CONSTRAINT,
                            n_initial_points=6).run(evaluate)
    assert len(result.evaluations) == 20
    assert result.best.params["mode"] == "b"
    assert all(e.valid == (e.params["mode"] == "b") for e in result.evaluations)


@pytest.mark.parametrize("index", range(3), ids=["grid", "random", "bayesian"])
def test_target_score_stops_early(index):
    search = searches(small_space(), target_score=0.5)[index]
    result = search.run(Counting())
    assert result.stopped_early and result.stop_reason == "target_score"
    assert result.best.score >= 0.5
    assert result.best is result.evaluations[-1]
    assert len(result.evaluations) < search.total_episodes


@pytest.mark.parametrize("index", range(3), ids=["grid", "random", "bayesian"])
def test_patience_stops_after_evaluations_without_improvement(index):
    search = searches(small_space(), patience=4)[index]
    result = search.run(Counting(lambda p: 1.0))
    assert [e.score for e in result.evaluations] == [1.0] * 5
    assert result.stopped_early and result.stop_reason == "patience"
    assert result.best.iteration == 1


def test_early_stop_settings_are_checked():
    space = small_space()
    with pytest.raises(InvalidInput) as caught:
        GridSearch(space, patience=0)
    assert caught.value.details[0]["field"] == "patience"
    with pytest.raises(InvalidInput) as caught:
        RandomSearch(space, n_iterations=10, target_score=float("nan"))
    assert caught.value.details[0]["field"] == "target_score"
    with pytest.raises(InvalidInput) as caught:
        BayesianSearch(space, n_iterations=0)
    assert caught.value.details[0]["field"] == "n_iterations"


def test_make_optimizer_by_name():
    space = small_space()
    assert make_optimizer("grid", space, constraint=CONSTRAINT).total_episodes == 207
    assert make_optimizer("random", space, n_iterations=7, seed=1).total_episodes == 7
    assert isinstance(make_optimizer("bayesian", space, n_iterations=7, seed=1), BayesianSearch)
    with pytest.raises(InvalidInput) as caught:
        make_optimizer("genetic", space)
    assert caught.value.details[0]["field"] == "optimizer"


def resumed(evaluations: list[Evaluation]) -> list[Evaluation]:
    """Evaluations as the training layer reads them back from training_metrics (JSON)."""
    import json
    return [Evaluation(e.iteration, json.loads(json.dumps(e.params)), e.score, e.metrics, e.duration_ms)
            for e in evaluations]


def test_grid_resume_skips_configurations_already_evaluated():
    space = small_space()
    first = GridSearch(space, constraint=CONSTRAINT).run(Counting())
    done = resumed(first.evaluations[:50])
    evaluate = Counting()
    calls = []
    result = GridSearch(space, constraint=CONSTRAINT).run(
        evaluate, callback=lambda i, t, s, m: calls.append((i, t)), already_done=done)
    assert len(evaluate.asked) == 207 - 50
    assert not {config_key(p) for p in evaluate.asked} & {config_key(e.params) for e in done}
    assert calls[0] == (50, 207) and calls[-1] == (207, 207)
    assert [e.iteration for e in result.evaluations] == list(range(1, 208))
    assert result.best.params == first.best.params


def test_random_resume_replays_the_seeded_sequence_without_the_done_ones():
    space = small_space()
    evaluate = Counting()
    first = RandomSearch(space, n_iterations=20, seed=9, constraint=CONSTRAINT).run(evaluate)
    sequence = evaluate.asked
    done = resumed([first.evaluations[i] for i in (0, 1, 2, 5, 8)])
    again = Counting()
    result = RandomSearch(space, n_iterations=20, seed=9, constraint=CONSTRAINT).run(again, already_done=done)
    assert again.asked == [p for i, p in enumerate(sequence) if i not in (0, 1, 2, 5, 8)]
    assert len(result.evaluations) == 20


def test_bayesian_resume_tells_the_model_and_never_repeats():
    space = small_space()
    first = BayesianSearch(space, n_iterations=10, seed=4, constraint=CONSTRAINT,
                           n_initial_points=6).run(Counting())
    done = resumed(first.evaluations)
    search = BayesianSearch(space, n_iterations=18, seed=4, constraint=CONSTRAINT, n_initial_points=6)
    proposer = search.proposer(done)
    proposer.propose()
    assert len(proposer.opt.Xi) == 10
    assert proposer.opt.models, "the first proposal after resume comes from the model"
    evaluate = Counting()
    result = search.run(evaluate, already_done=done)
    assert len(evaluate.asked) == 8
    assert not {config_key(p) for p in evaluate.asked} & {config_key(e.params) for e in done}
    assert len(result.evaluations) == 18


def test_resume_of_a_finished_search_evaluates_nothing():
    space = small_space(fast={"choices": [10, 15]}, slow=40, ratio=0.2)
    first = GridSearch(space, constraint=CONSTRAINT).run(Counting())
    evaluate = Counting()
    result = GridSearch(space, constraint=CONSTRAINT).run(evaluate, already_done=resumed(first.evaluations))
    assert evaluate.asked == [] and len(result.evaluations) == 6


class Planted(Strategy):
    """A large space (≈22.9M configurations) for a synthetic objective."""

    name = "planted"
    param_space = ParamSpace(Param("a", "int", 0, 60, step=1, default=30),
                             Param("b", "int", 0, 60, step=1, default=30),
                             Param("c", "int", 0, 60, step=1, default=30),
                             Param("d", "float", 0.0, 1.0, step=0.01, default=0.5))


def planted(params: dict[str, Any], candle_callback: Any = None) -> float:
    """Maximum 0 at a=17, b=44, c=29, d=0.63; smooth around it."""
    return -(((params["a"] - 17) / 60) ** 2 + ((params["b"] - 44) / 60) ** 2
             + ((params["c"] - 29) / 60) ** 2 + (params["d"] - 0.63) ** 2)


def best_scores(n_iterations: int, **bayesian_options) -> tuple[list[float], list[float]]:
    """Bayesian's and random search's best scores on the planted objective, seeds 0–9."""
    space = build_search_space(Planted)
    bayes = [BayesianSearch(space, n_iterations=n_iterations, seed=seed, **bayesian_options)
             .run(planted).best.score for seed in range(10)]
    rand = [RandomSearch(space, n_iterations=n_iterations, seed=seed).run(planted).best.score
            for seed in range(10)]
    return bayes, rand


def report_medians(record_property, n_iterations: int, bayes: list[float], rand: list[float]) -> None:
    record_property("figure", f"planted optimum, {n_iterations} evaluations x 10 seeds: median best score "
                              f"bayesian {statistics.median(bayes):.4f}, random {statistics.median(rand):.4f} "
                              "(optimum 0)")


def test_bayesian_beats_random_on_a_planted_optimum(record_property):
    bayes, rand = best_scores(30, n_initial_points=8)
    report_medians(record_property, 30, bayes, rand)
    assert statistics.median(bayes) > statistics.median(rand)
    assert sum(b > r for b, r in zip(bayes, rand)) >= 7


def test_bayesian_keeps_its_lead_over_a_longer_run(record_property):
    bayes, rand = best_scores(100)
    report_medians(record_property, 100, bayes, rand)
    assert statistics.median(bayes) > statistics.median(rand)
    assert sum(b > r for b, r in zip(bayes, rand)) >= 8


def test_bayesian_fits_its_model_as_results_grow_by_half(monkeypatch):
    from trad.optimize.surrogate import CandidateGP

    sizes = []
    fit = CandidateGP.fit

    def counted_fit(model, X, y):
        sizes.append(len(X))
        return fit(model, X, y)

    monkeypatch.setattr(CandidateGP, "fit", counted_fit)
    result = BayesianSearch(build_search_space(Planted), n_iterations=60, seed=0).run(planted)
    assert len(result.evaluations) == 60
    assert sizes == [10, 15, 23, 35, 53]


class Labels(Strategy):
    """Only categorical parameters: the model's kernel is scikit-optimize's Hamming kernel."""

    name = "labels"
    param_space = ParamSpace(Param("colour", "categorical", default="a", choices=tuple("abcdef")),
                             Param("shape", "categorical", default="x", choices=tuple("vwxyz")))


def test_bayesian_search_over_categorical_parameters_only():
    def score(params, candle_callback=None):
        return float(params["colour"] == "c") + float(params["shape"] == "y")

    evaluate = Counting(score)
    result = BayesianSearch(build_search_space(Labels), n_iterations=20, seed=0,
                            n_initial_points=5).run(evaluate)
    assert len({config_key(p) for p in evaluate.asked}) == 20 == len(result.evaluations)
    assert result.best.params == {"colour": "c", "shape": "y"}


def test_evaluations_hold_plain_python_values():
    import numpy as np
    evaluation = Evaluation(np.int64(3), {"fast": np.int64(10), "ratio": np.float64(0.5), "mode": "b"},
                            np.float64(1.25), {"n_trades": np.float64(7)}, np.float32(2.5))
    assert type(evaluation.iteration) is int and type(evaluation.score) is float
    assert [type(v) for v in evaluation.params.values()] == [int, float, str]
    assert type(evaluation.metrics["n_trades"]) is float and evaluation.valid
    assert not Evaluation(1, {}, float("nan")).valid


def test_importing_the_optimizers_does_not_load_scikit_optimize():
    import subprocess
    import sys
    code = "import sys, trad.optimize; print('skopt' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
