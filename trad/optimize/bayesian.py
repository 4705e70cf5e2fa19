"""Bayesian search: a Gaussian-process model (scikit-optimize) picks each next configuration.

- The first `n_initial_points` configurations are random; after that each one maximises
  expected improvement over `n_points` sampled candidates (`acq_optimizer="sampling"`),
  which keeps the optimizer's own time small and bounded.
- Scores are maximised: the model is told −score. An invalid result (too few trades, a
  non-finite value) is told as the worst valid value seen so far; results that are
  invalid before any valid one exists are told once one does.
- Constraints are respected by construction: scikit-optimize's `space_constraint` makes
  both the random points and the sampled candidates satisfy them, so an infeasible
  configuration is never proposed (no penalty needed).
- Parallel (n_jobs > 1): a point is asked whenever a slot frees, while other evaluations
  run. The model then sees every finished result plus a "constant liar" for each point
  still running (told the best value so far), so it does not propose them again.
- Cost: each model ask refits the GP once. Kernel hyper-parameters are re-optimised
  (warm-started, no restarts) every `refit_every` new results, and held fixed in between.
- Resume: every recorded result is told to the model first; their configurations are
  never proposed again. `total_episodes` counts them.
- With a seed and n_jobs=1 a run is reproducible; with n_jobs > 1 the order in which
  results arrive changes the model, so runs may differ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from trad.errors import InvalidInput
from trad.optimize.base import Evaluation, Optimizer, checked_n_iterations
from trad.optimize.space import (Constraint, Dimension, config_key, grid_size, is_feasible,
                                 iter_grid)

COUNT_LIMIT = 200_000
RANDOM_TRIES = 100
_SEED_RANGE = 2**31 - 1


class BayesianSearch(Optimizer):
    """Gaussian-process Bayesian optimisation with ask/tell, seeded and parallel-aware."""

    name = "bayesian"

    def __init__(self, space: Sequence[Dimension], *, n_iterations: int, seed: int | None = None,
                 constraint: Constraint | None = None, target_score: float | None = None,
                 patience: int | None = None, n_initial_points: int = 10, n_points: int = 1000,
                 refit_every: int = 5) -> None:
        super().__init__(space, constraint=constraint, target_score=target_score, patience=patience)
        self.n_iterations = checked_n_iterations(n_iterations)
        self.seed = seed
        self.n_initial_points = max(1, n_initial_points)
        self.n_points = n_points
        self.refit_every = max(1, refit_every)
        self._total = min(self.n_iterations, _allowed_count(self.space, constraint, self.n_iterations))

    @property
    def total_episodes(self) -> int:
        """n_iterations, or fewer when the space allows fewer configurations."""
        return self._total

    def proposer(self, already_done: Sequence[Evaluation]) -> BayesianProposer:
        """A model that has been told every result of `already_done`."""
        return BayesianProposer(self, already_done)


def _allowed_count(space: Sequence[Dimension], constraint: Constraint | None, wanted: int) -> int:
    """How many configurations the constraints allow, or `wanted` when too many to count."""
    if any(d.is_continuous for d in space):
        return wanted
    size = grid_size(space)
    if constraint is None:
        return size
    if size > COUNT_LIMIT:
        return wanted
    return sum(1 for params in iter_grid(space) if is_feasible(params, constraint))


class Encoding:
    """Configurations ↔ scikit-optimize points; fixed parameters are left out of the points.

    Stepped ranges and numeric choices become grid indices (Integer), categorical choices a
    Categorical of indices, continuous ranges a Real: proposals always lie on the grid.
    """

    def __init__(self, space: Sequence[Dimension], constraint: Constraint | None) -> None:
        self.space = list(space)
        self.constraint = constraint
        self.searched = [d for d in self.space if d.is_continuous or d.size > 1]

    def dimensions(self) -> list[Any]:
        """The scikit-optimize dimensions of the searched parameters."""
        from skopt.space import Categorical, Integer, Real

        return [Real(d.low, d.high, name=d.name) if d.is_continuous
                else Categorical(list(range(d.size)), name=d.name) if d.kind == "categorical"
                else Integer(0, d.size - 1, name=d.name) for d in self.searched]

    def decode(self, point: Sequence[Any]) -> dict[str, Any]:
        """The configuration of a point, in plain Python values."""
        values = dict(zip((d.name for d in self.searched), point))
        return {d.name: (float(values[d.name]) if d.is_continuous else d.value_at(int(values[d.name])))
                if d.name in values else d.value_at(0) for d in self.space}

    def encode(self, params: dict[str, Any]) -> list[Any] | None:
        """The point of a configuration, or None when it is not in the space (or not allowed)."""
        if not all(d.contains(params.get(d.name)) for d in self.space) \
                or not is_feasible(params, self.constraint):
            return None
        return [float(params[d.name]) if d.is_continuous else d.index_of(params[d.name])
                for d in self.searched]

    def allows(self, point: Sequence[Any]) -> bool:
        """The `space_constraint` for scikit-optimize."""
        return is_feasible(self.decode(point), self.constraint)


class BayesianProposer:
    """The state of one Bayesian run: told results, points in flight, the GP kernel."""

    def __init__(self, search: BayesianSearch, already_done: Sequence[Evaluation]) -> None:
        from skopt.space import Space

        self.search = search
        self.encoding = Encoding(search.space, search.constraint)
        self.space = Space(self.encoding.dimensions(), constraint=self._constraint()) \
            if self.encoding.searched else None
        self.rng = np.random.RandomState(search.seed)
        self.points: list[list[Any]] = []
        self.values: list[float] = []
        self.valid_values: list[float] = []
        self.deferred: list[list[Any]] = []
        self.pending: dict[tuple, list[Any]] = {}
        self.seen: set[tuple] = set()
        self.kernel: Any = None
        self.kernel_fitted_at = 0
        self.finished_before = min(len(already_done), search.total_episodes)
        self.budget = search.total_episodes - self.finished_before
        for evaluation in already_done:
            self.seen.add(config_key(evaluation.params))
            point = self.encoding.encode(evaluation.params)
            if point is not None:
                self._learn(point, evaluation.score)

    def _constraint(self) -> Any:
        return None if self.search.constraint is None else self.encoding.allows

    def propose(self) -> dict[str, Any] | None:
        """The next configuration: random at first, then the model's pick."""
        if self.budget <= 0:
            return None
        point = self._random_point() if len(self.points) < self.search.n_initial_points \
            else self._model_point()
        params = self.encoding.decode(point)
        if config_key(params) in self.seen:
            point = self._unseen_point()
            if point is None:
                return None
            params = self.encoding.decode(point)
        key = config_key(params)
        self.seen.add(key)
        self.pending[key] = point
        self.budget -= 1
        return params

    def tell(self, evaluation: Evaluation) -> None:
        """Learn a finished evaluation."""
        point = self.pending.pop(config_key(evaluation.params), None)
        if point is None:
            point = self.encoding.encode(evaluation.params)
        if point is not None:
            self._learn(point, evaluation.score)

    def _learn(self, point: list[Any], score: float | None) -> None:
        """Record −score; an invalid result counts as the worst valid value (deferred until one exists)."""
        if score is None:
            if not self.valid_values:
                self.deferred.append(point)
                return
            self.points.append(point)
            self.values.append(max(self.valid_values))
            return
        self.valid_values.append(-score)
        self.points.append(point)
        self.values.append(-score)
        worst = max(self.valid_values)
        self.points.extend(self.deferred)
        self.values.extend([worst] * len(self.deferred))
        self.deferred.clear()

    def _random_point(self) -> list[Any]:
        return self._sample(1)[0]

    def _sample(self, n: int) -> list[list[Any]]:
        if self.space is None:
            return [[] for _ in range(n)]
        try:
            return self.space.rvs(n_samples=n, random_state=self.rng)
        except RuntimeError as error:
            raise InvalidInput.field("param_space", "no configuration satisfies the strategy's "
                                                    "constraints") from error

    def _unseen_point(self) -> list[Any] | None:
        """A random configuration not evaluated or running yet; a grid scan when draws keep repeating."""
        for point in self._sample(RANDOM_TRIES):
            if config_key(self.encoding.decode(point)) not in self.seen:
                return point
        if any(d.is_continuous for d in self.search.space):
            return None
        for params in iter_grid(self.search.space):
            if config_key(params) not in self.seen and is_feasible(params, self.search.constraint):
                return self.encoding.encode(params)
        return None

    def _model_point(self) -> list[Any]:
        """The model's pick, fitted on every result plus a constant liar for each running point."""
        from skopt import Optimizer as SkoptOptimizer
        from threadpoolctl import threadpool_limits

        running = list(self.pending.values())
        lie = min(self.values) if self.values else 0.0
        model = SkoptOptimizer(
            self.encoding.dimensions(), base_estimator=self._estimator(), n_initial_points=0,
            acq_func="EI", acq_optimizer="sampling",
            acq_optimizer_kwargs={"n_points": self.search.n_points},
            space_constraint=self._constraint(), random_state=self.rng.randint(_SEED_RANGE))
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            model.tell(self.points + running, self.values + [lie] * len(running))
            point = model.ask()
        self._keep_kernel(model.models[-1])
        return list(point)

    def _estimator(self) -> Any:
        """A GP warm-started from the last kernel; its hyper-parameters refit every refit_every results."""
        from skopt.utils import cook_estimator

        estimator = cook_estimator("GP", space=self.encoding.dimensions(),
                                   random_state=self.rng.randint(_SEED_RANGE))
        estimator.set_params(n_restarts_optimizer=0)
        if self.kernel is not None:
            estimator.set_params(kernel=self.kernel)
            if len(self.points) - self.kernel_fitted_at < self.search.refit_every:
                estimator.set_params(optimizer=None)
                return estimator
        self.kernel_fitted_at = len(self.points)
        self.kernel = None
        return estimator

    def _keep_kernel(self, model: Any) -> None:
        """Remember the fitted kernel (with its noise level) to start the next fit from."""
        if self.kernel is not None:
            return
        from skopt.learning.gaussian_process.kernels import WhiteKernel

        noise = max(float(model.noise_ or 0.0), 1e-5)
        self.kernel = model.kernel_.k1 + WhiteKernel(noise_level=noise)
