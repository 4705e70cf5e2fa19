"""The search space of a job: every strategy parameter, narrowed by the job's overrides.

Overrides (the job's `param_space`) name a parameter and give one of
    {"low": …, "high": …, "step": …}   a narrower range (each key optional)
    {"choices": […]}                   exactly these values
    a plain value                      the parameter is fixed at it
and every value must lie inside the strategy's own bounds.

Grid values of a range are low, low+step, … up to high (high included when it falls on
a step). Float steps are done in decimal arithmetic on values rounded to 12 significant
digits, so 0.1 + 0.2 gives 0.3, never 0.30000000000000004. A float parameter without a
declared step is continuous for random and Bayesian search, and gridded at
`default_grid_step` (a tenth of its range), the step /api/v1/strategies reports.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from decimal import Decimal
from typing import Any, NoReturn

from trad.errors import InvalidInput
from trad.strategies.base import Param, Strategy, default_grid_step

Constraint = Callable[[Mapping[str, Any]], "str | None"]
"""Why a configuration's values cannot go together, or None (Strategy.constraint_violation)."""

_RANGE_KEYS = frozenset({"low", "high", "step"})
_ABSENT = object()


def _decimal(number: float) -> Decimal:
    """`number` as a decimal of at most 12 significant digits (drops binary float noise)."""
    return Decimal(format(number, ".12g"))


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a list of values, a stepped range, or a continuous float range."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()

    @property
    def is_continuous(self) -> bool:
        """A float range without a step: random and Bayesian search draw any value in it."""
        return not self.choices and self.step is None

    @property
    def grid_step(self) -> float | None:
        """The step of the grid over a range (`default_grid_step` when none is declared)."""
        if self.choices:
            return None
        return self.step if self.step is not None else default_grid_step(self.kind, self.low, self.high)

    @cached_property
    def size(self) -> int:
        """How many grid values the dimension has."""
        if self.choices:
            return len(self.choices)
        low, high, step = _decimal(self.low), _decimal(self.high), _decimal(self.grid_step)
        return int((high - low) // step) + 1

    def value_at(self, index: int) -> Any:
        """The grid value number `index` (0-based), as a plain Python value."""
        if not 0 <= index < self.size:
            raise IndexError(f"{self.name}: grid index {index} out of range")
        if self.choices:
            return self.choices[index]
        if self.kind == "int":
            return int(self.low) + index * int(self.grid_step)
        return float(_decimal(self.low) + index * _decimal(self.grid_step))

    def grid_values(self) -> tuple:
        """Every grid value, in order."""
        return tuple(self.value_at(i) for i in range(self.size))

    def index_of(self, value: Any) -> int | None:
        """The grid index of `value`, or None when it is not one of the grid values."""
        if self.choices:
            for index, choice in enumerate(self.choices):
                if _same_value(choice, value):
                    return index
            return None
        if not _is_number(value):
            return None
        offset = (_decimal(value) - _decimal(self.low)) / _decimal(self.grid_step)
        if offset != offset.to_integral_value() or not 0 <= offset < self.size:
            return None
        return int(offset)

    def contains(self, value: Any) -> bool:
        """Whether `value` can be drawn from this dimension (any value in a continuous range)."""
        if self.is_continuous:
            return _is_number(value) and self.low <= value <= self.high
        return self.index_of(value) is not None


def build_search_space(strategy_cls: type[Strategy],
                       overrides: Mapping[str, Any] | None = None) -> list[Dimension]:
    """One Dimension per strategy parameter, in order, narrowed by `overrides`; raises InvalidInput."""
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, Mapping):
        raise InvalidInput.field("param_space", "must be an object mapping parameter names to overrides")
    details = [{"field": f"param_space.{name}",
                "issue": f"unknown parameter; expected one of {', '.join(strategy_cls.param_space.names)}"}
               for name in overrides if name not in strategy_cls.param_space]
    space = []
    for param in strategy_cls.param_space:
        try:
            space.append(_dimension(param, overrides.get(param.name, _ABSENT)))
        except InvalidInput as error:
            details.extend({"field": f"param_space.{param.name}", "issue": d["issue"]}
                           for d in error.details)
    if details:
        raise InvalidInput.fields(details, about="invalid param_space")
    return space


def _dimension(param: Param, override: Any) -> Dimension:
    """The dimension of one parameter under its override (or the strategy's own range)."""
    if override is _ABSENT:
        if param.kind == "categorical":
            return Dimension(param.name, param.kind, choices=tuple(param.choices))
        return _range_dimension(param, {})
    if isinstance(override, Mapping):
        keys = set(override)
        if keys == {"choices"}:
            return _choices_dimension(param, override["choices"])
        if "choices" in keys or not keys <= _RANGE_KEYS:
            _fail("give either {low, high, step} or {choices}, got keys " + ", ".join(sorted(map(str, keys))))
        if param.kind == "categorical":
            _fail("a categorical parameter takes {choices} or a fixed value, not a range")
        return _range_dimension(param, override)
    if isinstance(override, (list, tuple, set)):
        _fail('for several values use {"choices": [...]}')
    return Dimension(param.name, param.kind, choices=(_validated(param, override),))


def _range_dimension(param: Param, spec: Mapping[str, Any]) -> Dimension:
    """A stepped (or continuous float) range inside the parameter's bounds."""
    low = _validated(param, spec.get("low", param.low), "low")
    high = _validated(param, spec.get("high", param.high), "high")
    if low > high:
        _fail(f"low ({low:g}) must be <= high ({high:g})")
    step = spec.get("step", param.step)
    if step is None and param.kind == "int":
        step = default_grid_step(param.kind, low, high)
    if step is not None:
        if not _is_number(step) or not math.isfinite(step) or step <= 0:
            _fail(f"step must be a number > 0, got {step!r}")
        if param.kind == "int":
            if not float(step).is_integer():
                _fail(f"step of an integer parameter must be an integer, got {step!r}")
            step = int(step)
        else:
            step = float(_decimal(step))
    if low == high:
        return Dimension(param.name, param.kind, choices=(low,))
    return Dimension(param.name, param.kind, low=low, high=high, step=step)


def _choices_dimension(param: Param, choices: Any) -> Dimension:
    """Exactly the given values; numeric ones sorted so neighbouring indices are neighbours."""
    if not isinstance(choices, (list, tuple)) or not choices:
        _fail("choices must be a non-empty list")
    values: list[Any] = []
    for choice in choices:
        value = _validated(param, choice, "choices")
        if not any(_same_value(value, seen) for seen in values):
            values.append(value)
    if param.kind != "categorical":
        values.sort()
    return Dimension(param.name, param.kind, choices=tuple(values))


def _validated(param: Param, value: Any, part: str = "") -> Any:
    """`value` checked and coerced by the parameter itself; the issue is prefixed with `part`."""
    try:
        return param.validate(value)
    except InvalidInput as error:
        issue = error.details[0]["issue"] if error.details else error.message
        _fail(f"{part}: {issue}" if part else issue)


def _fail(issue: str) -> NoReturn:
    raise InvalidInput.field("param_space", issue)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _same_value(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return _decimal(a) == _decimal(b)
    return type(a) is type(b) and a == b


def grid_size(space: Sequence[Dimension]) -> int:
    """How many configurations the full grid over `space` has (before constraints)."""
    return math.prod(dimension.size for dimension in space)


def iter_grid(space: Sequence[Dimension]) -> Iterator[dict[str, Any]]:
    """Every grid configuration in order; the last dimension varies fastest."""
    names = [dimension.name for dimension in space]
    for values in itertools.product(*(dimension.grid_values() for dimension in space)):
        yield dict(zip(names, values))


def config_at(space: Sequence[Dimension], index: int) -> dict[str, Any]:
    """Grid configuration number `index` (0-based) in iter_grid order, without enumerating."""
    params: dict[str, Any] = {}
    for dimension in reversed(space):
        index, position = divmod(index, dimension.size)
        params[dimension.name] = dimension.value_at(position)
    return {dimension.name: params[dimension.name] for dimension in space}


def is_feasible(params: Mapping[str, Any], constraint: Constraint | None) -> bool:
    """Whether the constraint (if any) accepts this configuration."""
    return constraint is None or constraint(params) is None


def config_key(params: Mapping[str, Any]) -> tuple:
    """A hashable identity of a configuration that survives a JSON round trip (resume)."""
    return tuple(sorted((name, _canonical(value)) for name, value in params.items()))


def _canonical(value: Any) -> Any:
    if _is_number(value):
        number = float(value)
        return int(number) if number.is_integer() else float(_decimal(number))
    return value


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value
