"""Random search: `n_iterations` distinct configurations drawn uniformly from the space.

The sequence depends only on the space, the constraints and `seed`, so the same seed gives
the same configurations in the same order — on resume too, where those already evaluated
are skipped (a job without a seed keeps the one its first run drew: see
`trad.training.workflow`). Grid values of stepped ranges are drawn with equal chance;
continuous float ranges uniformly. A configuration that violates a constraint is redrawn (rejection), as is
a duplicate; a space with fewer allowed configurations than `n_iterations` is evaluated
whole, in random order, and `total_episodes` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from trad.optimize.base import (Evaluation, Optimizer, Proposer, SequenceProposer,
                                checked_n_iterations)
from trad.optimize.space import (Constraint, Dimension, config_at, config_key, grid_size,
                                 is_feasible)

PERMUTATION_LIMIT = 1_000_000
DRAWS_PER_CONFIGURATION = 100


class RandomSearch(Optimizer):
    """Uniform random search without repeats, reproducible with a seed."""

    name = "random"

    def __init__(self, space: Sequence[Dimension], *, n_iterations: int, seed: int | None = None,
                 constraint: Constraint | None = None, target_score: float | None = None,
                 patience: int | None = None) -> None:
        super().__init__(space, constraint=constraint, target_score=target_score, patience=patience)
        self.n_iterations = checked_n_iterations(n_iterations)
        self.seed = seed
        self.configurations = random_configurations(self.space, constraint, self.n_iterations, seed)

    @property
    def total_episodes(self) -> int:
        """n_iterations, or fewer when the space allows fewer configurations."""
        return len(self.configurations)

    def proposer(self, already_done: Sequence[Evaluation]) -> Proposer:
        """The seeded sequence, without the configurations already evaluated."""
        return SequenceProposer(self.configurations, already_done)


def random_configurations(space: Sequence[Dimension], constraint: Constraint | None, n: int,
                          seed: int | None) -> list[dict[str, Any]]:
    """Up to `n` distinct allowed configurations in random order; the same for the same seed."""
    rng = np.random.default_rng(seed)
    chosen: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for params in _candidates(space, n, rng):
        key = config_key(params)
        if key in seen or not is_feasible(params, constraint):
            continue
        seen.add(key)
        chosen.append(params)
        if len(chosen) == n:
            break
    return chosen


def _candidates(space: Sequence[Dimension], n: int,
                rng: np.random.Generator) -> Iterable[dict[str, Any]]:
    """A random permutation of a small enough finite space, else independent draws."""
    if not any(d.is_continuous for d in space) and grid_size(space) <= PERMUTATION_LIMIT:
        return (config_at(space, int(i)) for i in rng.permutation(grid_size(space)))
    return (draw_configuration(space, rng) for _ in range(n * DRAWS_PER_CONFIGURATION))


def draw_configuration(space: Sequence[Dimension], rng: np.random.Generator) -> dict[str, Any]:
    """One configuration: each value drawn uniformly from its dimension."""
    return {d.name: float(rng.uniform(d.low, d.high)) if d.is_continuous
            else d.value_at(int(rng.integers(d.size))) for d in space}
