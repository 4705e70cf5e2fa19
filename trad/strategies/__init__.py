"""Trading strategies and their registry by name."""

from __future__ import annotations

from trad.errors import InvalidInput
from trad.strategies.base import Param, ParamSpace, Signals, Strategy

STRATEGIES: dict[str, type[Strategy]] = {}


def strategy_names() -> list[str]:
    """The registered strategy names, sorted."""
    return sorted(STRATEGIES)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`; raises InvalidInput for an unknown name."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        choices = ", ".join(strategy_names())
        raise InvalidInput.field("strategy", f"unknown strategy {name!r}; choose one of {choices}") from None


__all__ = ["STRATEGIES", "Param", "ParamSpace", "Signals", "Strategy", "get_strategy",
           "strategy_names"]
