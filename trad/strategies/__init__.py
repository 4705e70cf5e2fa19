"""Trading strategies and their registry by name."""

from __future__ import annotations

from trad.errors import InvalidInput
from trad.strategies.base import Param, ParamSpace, Signals, Strategy
from trad.strategies.liquidity_sweep import LiquiditySweep
from trad.strategies.rsi_reversion import RsiReversion
from trad.strategies.sma_crossover import SmaCrossover

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (LiquiditySweep, SmaCrossover, RsiReversion)
}


def strategy_names() -> list[str]:
    """The registered strategy names, sorted."""
    return sorted(STRATEGIES)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`; raises InvalidInput for an unknown name."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        choices = ", ".join(strategy_names())
        issue = f"unknown strategy {name!r}; choose one of {choices}"
        raise InvalidInput.field("strategy", issue) from None


__all__ = ["STRATEGIES", "LiquiditySweep", "Param", "ParamSpace", "RsiReversion", "Signals",
           "SmaCrossover", "Strategy", "get_strategy", "strategy_names"]
