"""Search spaces: overrides inside the strategy's bounds, exact grid values, constraints."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trad.errors import InvalidInput
from trad.optimize import GridSearch, build_search_space, grid_size, iter_grid
from trad.optimize.space import Dimension, config_at, config_key
from trad.strategies import get_strategy
from trad.strategies.base import Param, ParamSpace, Strategy

from tests.optimize.toys import Toy


def values(space, name):
    return next(d for d in space if d.name == name).grid_values()


def test_default_space_follows_the_strategy():
    space = build_search_space(Toy)
    assert [d.name for d in space] == ["fast", "slow", "ratio", "mode"]
    assert values(space, "fast") == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert values(space, "ratio") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert values(space, "mode") == ("a", "b", "c")
    assert grid_size(space) == 10 * 19 * 10 * 3


def test_int_steps_include_high_only_when_on_a_step():
    space = build_search_space(Toy, {"fast": {"low": 5, "high": 22, "step": 5}})
    assert values(space, "fast") == (5, 10, 15, 20)
    assert all(type(v) is int for v in values(space, "fast"))


def test_float_steps_are_exact_decimals():
    space = build_search_space(Toy, {"ratio": {"low": 0.1, "high": 0.7, "step": 0.1}})
    grid = values(space, "ratio")
    assert grid == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert [repr(v) for v in grid] == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]


def test_liquidity_sweep_float_grid_has_no_drift():
    space = build_search_space(get_strategy("liquidity_sweep"))
    pierce = values(space, "pierce_depth")
    assert len(pierce) == 20 and pierce[0] == 0.05 and pierce[-1] == 1.0
    assert all(len(repr(v)) <= 4 for v in pierce)


def test_float_without_step_is_continuous_and_gridded_at_a_tenth():
    class Smooth(Strategy):
        name = "smooth"
        param_space = ParamSpace(Param("x", "float", 0.0, 0.3, default=0.1))

    [dimension] = build_search_space(Smooth)
    assert dimension.is_continuous
    assert dimension.grid_values() == (0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.18, 0.21, 0.24, 0.27, 0.3)


@pytest.mark.parametrize("low, high, step", [(0.0, 0.3, 0.03), (0.1, 0.7, 0.06), (0.05, 1.0, 0.095),
                                             (1.0, 4.0, 0.3), (-2.5, 7.3, 0.98)])
def test_the_step_a_strategy_reports_is_the_one_its_grid_uses(low, high, step):
    class Smooth(Strategy):
        name = "smooth"
        param_space = ParamSpace(Param("x", "float", low, high, default=low), Param("n", "int", 1, 9, default=3))

    reported = {p["name"]: p["step"] for p in Smooth.param_space.to_list()}  # as /api/v1/strategies shows them
    space = build_search_space(Smooth)
    assert reported == {d.name: d.grid_step for d in space} == {"x": step, "n": 1}
    assert space[0].is_continuous  # for random and Bayesian search; the step is the grid's


def test_choices_and_fixed_values():
    space = build_search_space(Toy, {"fast": {"choices": [20, 10, 10]}, "slow": 60, "mode": "c",
                                     "ratio": {"choices": [0.5]}})
    assert values(space, "fast") == (10, 20)
    assert values(space, "slow") == (60,)
    assert values(space, "mode") == ("c",)
    assert grid_size(space) == 2


def test_low_equal_high_fixes_the_value():
    space = build_search_space(Toy, {"slow": {"low": 70, "high": 70}})
    assert values(space, "slow") == (70,)


@pytest.mark.parametrize("overrides, issue", [
    ({"nope": 3}, "unknown parameter"),
    ({"fast": {"low": 30, "high": 10}}, "low (30) must be <= high (10)"),
    ({"fast": {"low": 1}}, "low: must be between 5 and 50"),
    ({"slow": {"high": 500}}, "high: must be between 20 and 200"),
    ({"fast": {"step": 0}}, "step must be a number > 0"),
    ({"fast": {"step": 2.5}}, "must be an integer"),
    ({"fast": {"low": 5, "choices": [5]}}, "either {low, high, step} or {choices}"),
    ({"mode": {"low": 1, "high": 2}}, "categorical parameter takes {choices}"),
    ({"mode": "z"}, "must be one of a, b, c"),
    ({"fast": [5, 10]}, "choices"),
    ({"fast": {"choices": []}}, "non-empty list"),
    ({"fast": {"choices": [5, 70]}}, "choices: must be between 5 and 50"),
    ({"ratio": "high"}, "must be a number"),
])
def test_bad_overrides_name_the_field(overrides, issue):
    with pytest.raises(InvalidInput) as caught:
        build_search_space(Toy, overrides)
    [name] = [n for n in overrides]
    assert caught.value.details[0]["field"] == f"param_space.{name}"
    assert issue in caught.value.details[0]["issue"]


def test_every_bad_override_is_reported_at_once():
    with pytest.raises(InvalidInput) as caught:
        build_search_space(Toy, {"fast": {"low": 99}, "slow": {"low": 1}, "ghost": 1})
    fields = sorted(d["field"] for d in caught.value.details)
    assert fields == ["param_space.fast", "param_space.ghost", "param_space.slow"]


def test_param_space_must_be_an_object():
    with pytest.raises(InvalidInput) as caught:
        build_search_space(Toy, ["fast"])
    assert caught.value.details[0]["field"] == "param_space"


def test_grid_skips_configurations_that_break_a_constraint():
    space = build_search_space(Toy, {"fast": {"low": 10, "high": 40, "step": 10},
                                     "slow": {"low": 20, "high": 40}, "ratio": 0.5, "mode": "a"})
    grid = GridSearch(space, constraint=Toy.constraint_violation)
    pairs = [(p["fast"], p["slow"]) for p in grid.configurations]
    assert pairs == [(10, 20), (10, 30), (10, 40), (20, 30), (20, 40), (30, 40)]
    assert grid.total_episodes == 6


def test_sma_crossover_grid_respects_fast_below_slow():
    strategy = get_strategy("sma_crossover")
    space = build_search_space(strategy, {"fast": {"low": 5, "high": 50}, "slow": {"low": 20, "high": 60}})
    grid = GridSearch(space, constraint=strategy.constraint_violation)
    assert grid_size(space) == 10 * 5
    assert all(p["fast"] < p["slow"] for p in grid.configurations)
    assert grid.total_episodes == sum(1 for f in range(5, 55, 5) for s in range(20, 70, 10) if f < s)


def test_grid_larger_than_the_limit_is_refused():
    with pytest.raises(InvalidInput) as caught:
        GridSearch(build_search_space(Toy), max_configs=1_000)
    assert caught.value.details[0]["field"] == "param_space"
    assert "5,700 configurations" in caught.value.message


def test_config_at_matches_grid_order():
    space = build_search_space(Toy, {"fast": {"high": 20}, "slow": {"high": 50}})
    assert [config_at(space, i) for i in range(grid_size(space))] == list(iter_grid(space))


def test_config_key_survives_a_json_round_trip():
    import json
    params = {"fast": 10, "ratio": 0.30000000000000004, "mode": "b"}
    assert config_key(json.loads(json.dumps(params))) == config_key({"mode": "b", "ratio": 0.3, "fast": 10.0})


decimals = st.integers(min_value=1, max_value=4)


@settings(max_examples=200, deadline=None)
@given(places=decimals, low=st.integers(0, 500), span=st.integers(1, 500), step=st.integers(1, 50))
def test_float_grid_values_are_short_decimals_on_the_step(places, low, span, step):
    scale = 10 ** places
    dimension = Dimension("x", "float", low=low / scale, high=(low + span) / scale, step=step / scale)
    grid = dimension.grid_values()
    assert grid[0] == low / scale
    assert len(grid) == span // step + 1
    for index, value in enumerate(grid):
        assert value == round(value, places)
        assert value <= (low + span) / scale
        assert dimension.index_of(value) == index
