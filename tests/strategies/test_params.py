"""Parameter spaces, validation errors, constraints and the registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trad.errors import InvalidInput
from trad.strategies import STRATEGIES, LiquiditySweep, Param, ParamSpace, get_strategy, strategy_names


def issues(error: InvalidInput) -> dict[str, str]:
    return {d["field"]: d["issue"] for d in error.details}


def test_defaults_fill_missing_values():
    assert LiquiditySweep().params == {
        "key_level_lookback": 50, "pierce_depth": 0.15, "volume_spike_threshold": 2.5,
        "reversal_candles": 3, "rr_ratio": 2.0, "max_hold_candles": 48}


def test_values_are_coerced_to_the_declared_type():
    params = LiquiditySweep.validate_params({"key_level_lookback": 60.0, "rr_ratio": 3,
                                             "pierce_depth": np.float32(0.5)})
    assert params["key_level_lookback"] == 60 and type(params["key_level_lookback"]) is int
    assert params["rr_ratio"] == 3.0 and type(params["rr_ratio"]) is float
    assert type(params["pierce_depth"]) is float


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(InvalidInput) as error:
        LiquiditySweep.validate_params({"key_level_lookback": 5, "rr_ratio": "2", "pierce_depth": True,
                                        "reversal_candles": 2.5, "max_hold_candles": float("nan"),
                                        "colour": "red"})
    assert issues(error.value) == {
        "params.key_level_lookback": "must be between 10 and 200",
        "params.rr_ratio": "must be a number, got '2'",
        "params.pierce_depth": "must be a number, got True",
        "params.reversal_candles": "must be an integer, got 2.5",
        "params.max_hold_candles": "must be a finite number",
        "params.colour": "unknown parameter; expected one of key_level_lookback, pierce_depth, "
                         "volume_spike_threshold, reversal_candles, rr_ratio, max_hold_candles",
    }
    assert error.value.message.startswith("invalid parameters for liquidity_sweep: ")


def test_a_value_a_rounding_error_past_a_bound_is_clipped():
    assert LiquiditySweep.validate_params({"pierce_depth": 1.0000000000000002})["pierce_depth"] == 1.0


def test_params_must_be_a_mapping():
    with pytest.raises(InvalidInput) as error:
        LiquiditySweep.validate_params([1, 2])
    assert issues(error.value) == {"params": "must be an object of parameter values"}


def test_categorical_params():
    mode = Param("mode", "categorical", choices=("fast", "slow"), default="fast")
    assert mode.validate("slow") == "slow"
    with pytest.raises(InvalidInput) as error:
        mode.validate("medium")
    assert issues(error.value) == {"params.mode": "must be one of fast, slow"}
    assert mode.to_dict()["choices"] == ["fast", "slow"]


def test_grid_steps_default_sensibly():
    assert Param("n", "int", 1, 10).grid_step == 1
    assert Param("x", "float", 1.0, 2.0).grid_step == pytest.approx(0.1)
    assert Param("x", "float", 1.0, 2.0, step=0.25).to_dict()["step"] == 0.25


def test_bad_declarations_fail_early():
    with pytest.raises(ValueError):
        Param("x", "decimal", 0, 1)
    with pytest.raises(ValueError):
        Param("x", "int", 5, 5)
    with pytest.raises(ValueError):
        ParamSpace(Param("x", "int", 0, 1), Param("x", "int", 0, 1))


def test_param_space_behaves_like_a_small_mapping():
    space = LiquiditySweep.param_space
    assert space.names[0] == "key_level_lookback" and "rr_ratio" in space and "x" not in space
    assert space["rr_ratio"].high == 4.0
    assert [p.name for p in space] == list(space.names)


@pytest.mark.parametrize("name", ["liquidity_sweep", "sma_crossover", "rsi_reversion"])
def test_every_strategy_describes_itself_as_json(name):
    cls = get_strategy(name)
    described = json.loads(json.dumps(cls.param_space.to_list()))
    assert [d["name"] for d in described] == list(cls.param_space.names)
    assert all(d["low"] <= d["default"] <= d["high"] for d in described)
    assert cls.validate_params(cls.param_space.defaults()) == cls().params


def test_the_registry():
    assert strategy_names() == ["liquidity_sweep", "rsi_reversion", "sma_crossover"]
    assert get_strategy("liquidity_sweep") is LiquiditySweep is STRATEGIES["liquidity_sweep"]
    with pytest.raises(InvalidInput) as error:
        get_strategy("martingale")
    assert issues(error.value) == {
        "strategy": "unknown strategy 'martingale'; choose one of liquidity_sweep, rsi_reversion, sma_crossover"}
