"""The shape of a search: slices, first-order importance, the top-2 score grid, sampled points."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from trad.optimize.analysis import MAX_POINTS, TOP_POINTS, analyse_search


def analyse(params: list[dict], scores: list, valid: list | None = None, categorical=frozenset()) -> dict:
    names = list(params[0]) if params else []
    return analyse_search(list(range(1, len(params) + 1)), scores, valid or [True] * len(params), params, names,
                          frozenset(categorical))


def shares(result: dict) -> dict[str, float]:
    return {item["name"]: item["share"] for item in result["importance"]}


def test_a_parameter_the_score_follows_explains_it_and_one_it_ignores_does_not():
    rng = np.random.default_rng(0)
    params = [{"matters": float(a), "ignored": float(b), "side": str(c)}
              for a, b, c in zip(rng.uniform(0, 1, 2_000), rng.uniform(0, 1, 2_000), rng.choice(["x", "y"], 2_000))]
    scores = [np.sin(3 * p["matters"]) + 0.5 * (p["side"] == "x") + rng.normal(0, 0.05) for p in params]
    result = analyse(params, scores, categorical={"side"})
    share = shares(result)
    assert [i["name"] for i in result["importance"]] == ["matters", "side", "ignored"]
    assert share["matters"] > 0.5 and share["side"] > 0.1 and share["ignored"] < 0.01
    assert sum(share.values()) + result["unexplained"] == pytest.approx(1.0, abs=1e-5)
    assert {result["heatmap"]["x"], result["heatmap"]["y"]} == {"matters", "side"}


def test_few_evaluations_of_a_useless_parameter_do_not_look_important():
    rng = np.random.default_rng(4)
    params = [{"a": float(v), "b": float(w)} for v, w in zip(rng.uniform(size=40), rng.uniform(size=40))]
    result = analyse(params, [p["a"] for p in params])
    assert shares(result)["a"] > 0.8 and shares(result)["b"] < 0.1


def test_a_full_grid_gives_one_bin_per_value_and_each_cell_its_score():
    grid = [{"fast": f, "slow": s} for f, s in itertools.product([5, 10, 20], [50, 100])]
    scores = [f * 0.1 - s * 0.001 for f, s in ((p["fast"], p["slow"]) for p in grid)]
    result = analyse(grid, scores)
    fast = next(s for s in result["slices"] if s["name"] == "fast")
    assert fast["kind"] == "values" and [b["value"] for b in fast["bins"]] == [5, 10, 20]
    assert [b["count"] for b in fast["bins"]] == [2, 2, 2]
    assert fast["bins"][2]["best"] == pytest.approx(2.0 - 0.05) and fast["bins"][0]["mean"] == pytest.approx(0.425)
    heatmap = result["heatmap"]
    assert heatmap["x"] == "fast" and heatmap["x_values"] == [5, 10, 20] and heatmap["y_values"] == [50, 100]
    assert heatmap["best"][1][0] == pytest.approx(0.5 - 0.1) and heatmap["count"] == [[1, 1, 1], [1, 1, 1]]


def test_continuous_values_fall_into_equal_ranges():
    rng = np.random.default_rng(2)
    params = [{"x": float(v)} for v in rng.uniform(0, 10, 1_600)]
    result = analyse(params, [p["x"] for p in params])
    bins = result["slices"][0]["bins"]
    assert result["slices"][0]["kind"] == "ranges" and len(bins) == 20
    assert all(b["low"] <= b["value"] <= b["high"] for b in bins) and sum(b["count"] for b in bins) == 1_600
    assert result["heatmap"] is None  # one parameter: no grid


def test_invalid_and_infinite_scores_are_left_out():
    params = [{"a": i % 3, "b": i % 2} for i in range(12)]
    scores = [1.0, None, float("inf"), 2.0, 3.0, 4.0, 5.0, float("nan"), 6.0, 7.0, 8.0, 9.0]
    valid = [True] * 11 + [False]
    result = analyse(params, scores, valid)
    assert result["evaluations"] == 12 and result["scored"] == 8
    assert 9.0 not in result["points"]["score"] and sorted(result["points"]["score"]) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_points_are_the_best_and_an_even_spread_of_the_rest():
    rng = np.random.default_rng(1)
    params = [{"a": float(v)} for v in rng.uniform(size=10_000)]
    scores = rng.normal(size=10_000).tolist()
    points = analyse(params, scores)["points"]
    assert len(points["score"]) == MAX_POINTS and points["iteration"] == sorted(points["iteration"])
    assert set(sorted(scores)[-TOP_POINTS:]) <= set(points["score"])


def test_ten_thousand_evaluations_of_six_parameters_take_milliseconds():
    rng = np.random.default_rng(3)
    params = [dict(zip("abcdef", row)) for row in rng.uniform(size=(10_000, 6)).tolist()]
    started = time.process_time()
    analyse(params, rng.normal(size=10_000).tolist())
    assert time.process_time() - started < 0.5  # ~15 ms idle: it runs in the web process
