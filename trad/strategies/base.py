"""The Strategy base: a declared parameter space, validation, and signals.

A strategy turns candles into `Signals` (what it decided at each candle's close);
the backtest engine turns signals into trades. Strategies never see positions or
equity, so the same signals serve every position size and fee setting.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from trad.errors import InvalidInput
from trad.strategies.progress import CandleCallback

PARAM_KINDS = ("int", "float", "categorical")
BOUND_TOLERANCE = 1e-9
GRID_STEPS_OF_CONTINUOUS = 10


def default_grid_step(kind: str, low: float, high: float) -> float:
    """The grid step of a range that declares none: 1 for an int, a tenth of the range (to 12
    significant digits) for a float. Random and Bayesian search draw any value of such a float range."""
    if kind == "int":
        return 1
    return float(format((high - low) / GRID_STEPS_OF_CONTINUOUS, ".12g"))


@dataclass(frozen=True)
class Param:
    """One tunable parameter: its type, bounds, grid step and default."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    default: Any = None
    choices: tuple = ()

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"param {self.name}: kind must be one of {PARAM_KINDS}")
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError(f"param {self.name}: a categorical needs choices")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"param {self.name}: needs low < high")

    @property
    def grid_step(self) -> float | None:
        """The grid step: the declared one, else `default_grid_step`."""
        if self.kind == "categorical":
            return None
        return self.step if self.step is not None else default_grid_step(self.kind, self.low, self.high)

    def validate(self, value: Any) -> Any:
        """Coerce `value` to this parameter's type and check it; raises InvalidInput."""
        if self.kind == "categorical":
            if value not in self.choices:
                self._fail(f"must be one of {', '.join(map(str, self.choices))}")
            return value
        number = self._as_number(value)
        if not self.low - self._slack() <= number <= self.high + self._slack():
            self._fail(f"must be between {_plain(self.low)} and {_plain(self.high)}")
        number = min(max(number, self.low), self.high)
        return int(round(number)) if self.kind == "int" else float(number)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description for the API."""
        return {
            "name": self.name,
            "type": self.kind,
            "low": self.low,
            "high": self.high,
            "step": self.grid_step,
            "default": self.default,
            "choices": list(self.choices),
        }

    def _as_number(self, value: Any) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            self._fail(f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            self._fail("must be a finite number")
        if self.kind == "int" and not number.is_integer():
            self._fail(f"must be an integer, got {value!r}")
        return number

    def _slack(self) -> float:
        return BOUND_TOLERANCE * max(1.0, abs(self.low), abs(self.high))

    def _fail(self, issue: str) -> None:
        raise InvalidInput.field(f"params.{self.name}", issue)


def _plain(number: float) -> str:
    """50.0 → '50', 0.05 → '0.05'."""
    return f"{number:g}"


class ParamSpace:
    """The ordered parameters of a strategy."""

    def __init__(self, *params: Param) -> None:
        self.params: tuple[Param, ...] = tuple(params)
        self.names: tuple[str, ...] = tuple(p.name for p in params)
        self._by_name = {p.name: p for p in params}
        if len(self._by_name) != len(self.params):
            raise ValueError("parameter names must be unique")

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-able descriptions of every parameter, in order."""
        return [p.to_dict() for p in self.params]


@dataclass(frozen=True)
class Signals:
    """What a strategy decided at each candle's close, one entry per candle.

    entries[t]: a long signal at the close of t, filled at the open of t+1.
    exits[t]: an exit signal at the close of t, filled at the open of t+1.
    stops[t]: the stop price of an entry signalled at t (NaN: no stop).
    stop_distances[t]: the stop sits this far below the entry price (NaN: no stop).
    rr_ratio: target = entry + rr_ratio · (entry − stop); None: no target.
    max_hold: a trade is closed at the close of its max_hold-th candle; None: no limit.
    """

    entries: np.ndarray
    exits: np.ndarray | None = None
    stops: np.ndarray | None = None
    stop_distances: np.ndarray | None = None
    rr_ratio: float | None = None
    max_hold: int | None = None


class Strategy:
    """A trading strategy: a parameter space and a vectorised signal generator."""

    name: ClassVar[str]
    param_space: ClassVar[ParamSpace]

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.validate_params(params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def validate_params(cls, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Fill defaults, coerce and check each value, then the constraints; raises InvalidInput."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidInput.field("params", "must be an object of parameter values")
        details: list[dict[str, str]] = []
        for name in params:
            if name not in cls.param_space:
                expected = ", ".join(cls.param_space.names)
                details.append({"field": f"params.{name}",
                                "issue": f"unknown parameter; expected one of {expected}"})
        clean: dict[str, Any] = {}
        for param in cls.param_space:
            try:
                clean[param.name] = param.validate(params.get(param.name, param.default))
            except InvalidInput as error:
                details.extend(error.details)
        if not details:
            violation = cls.constraint_violation(clean)
            if violation:
                details.append({"field": "params", "issue": violation})
        if details:
            raise InvalidInput.fields(details, about=f"invalid parameters for {cls.name}")
        return clean

    @classmethod
    def constraint_violation(cls, params: Mapping[str, Any]) -> str | None:
        """Why these (individually valid) values cannot go together; None when they can."""
        return None

    @property
    def min_history(self) -> int:
        """How many candles come before the first one that can signal."""
        raise NotImplementedError

    def generate_signals(self, data: pd.DataFrame,
                         progress_callback: CandleCallback | None = None) -> Signals:
        """Signals for every candle of `data`; reports (done, total, 'signals')."""
        raise NotImplementedError
