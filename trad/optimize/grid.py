"""Grid search: every configuration of the grid that the strategy's constraints allow.

Configurations that violate a constraint (e.g. sma_crossover's fast < slow) are skipped,
so they are neither evaluated nor counted in `total_episodes`. Order is the grid order
(the last parameter varies fastest), whatever `n_jobs` is. On resume, configurations
already evaluated are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from trad.errors import InvalidInput
from trad.optimize.base import Evaluation, Optimizer, Proposer, SequenceProposer
from trad.optimize.space import Constraint, Dimension, grid_size, is_feasible, iter_grid

DEFAULT_MAX_CONFIGS = 10_000


class GridSearch(Optimizer):
    """Exhaustive search over the grid of the space."""

    name = "grid"

    def __init__(self, space: Sequence[Dimension], *, constraint: Constraint | None = None,
                 target_score: float | None = None, patience: int | None = None,
                 max_configs: int = DEFAULT_MAX_CONFIGS) -> None:
        super().__init__(space, constraint=constraint, target_score=target_score, patience=patience)
        size = grid_size(self.space)
        if size > max_configs:
            raise InvalidInput.field("param_space", f"the grid has {size:,} configurations; at most "
                                                    f"{max_configs:,} are allowed — narrow the ranges "
                                                    f"or use random or bayesian search")
        self.configurations = [params for params in iter_grid(self.space)
                               if is_feasible(params, constraint)]

    @property
    def total_episodes(self) -> int:
        """The grid size after constraints."""
        return len(self.configurations)

    def proposer(self, already_done: Sequence[Evaluation]) -> Proposer:
        """The grid in order, without the configurations already evaluated."""
        return SequenceProposer(self.configurations, already_done)
