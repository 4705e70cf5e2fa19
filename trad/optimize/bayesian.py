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
  run. The model is then fitted on every finished result plus a "constant liar" for each
  point still running (told the best value so far, removed again after the ask), so it
  does not propose them again.
- Cost: one Optimizer for the whole run and one GP fit per model ask. Kernel
  hyper-parameters are re-optimised (warm-started, no restarts) after `refit_every` new
  results, or 20 % more once there are many, and held fixed in between; BLAS runs
  single-threaded meanwhile. Measured here: ~25–35 ms of optimizer time per episode at
  100 episodes in 6 dimensions.
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
        import skopt  # noqa: F401  (loaded here, so its import time is not charged to the run)
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


_blas_controller: list[Any] = []


def _single_threaded_blas() -> Any:
    """BLAS limited to one thread: on small GP matrices its threads only fight each other
    (and the worker processes) — measured 3x faster here."""
    if not _blas_controller:
        from threadpoolctl import ThreadpoolController
        _blas_controller.append(ThreadpoolController())
    return _blas_controller[0].limit(limits=1, user_api="blas")


class Encoding:
    """Configurations ↔ scikit-optimize points; fixed parameters are left out of the points.

    Stepped ranges and numeric choices become grid indices (Integer), categorical choices a
    Categorical of indices, continuous ranges a Real: proposals always lie on the grid.
    """

    def __init__(self, space: Sequence[Dimension], constraint: Constraint | None) -> None:
        self.space = list(space)
        self.constraint = constraint
        self.searched = [d for d in self.space if d.is_continuous or d.size > 1]
        self.values = {d.name: d.grid_values() for d in self.space if not d.is_continuous}
        self.fixed = {d.name: self.values[d.name][0] for d in self.space if d not in self.searched}
        self.tables = [(d.name, None if d.is_continuous else self.values[d.name]) for d in self.searched]

    def dimensions(self) -> list[Any]:
        """The scikit-optimize dimensions of the searched parameters."""
        from skopt.space import Categorical, Integer, Real

        return [Real(d.low, d.high, name=d.name) if d.is_continuous
                else Categorical(list(range(d.size)), name=d.name) if d.kind == "categorical"
                else Integer(0, d.size - 1, name=d.name) for d in self.searched]

    def decode(self, point: Sequence[Any]) -> dict[str, Any]:
        """The configuration of a point, in plain Python values."""
        point_of = dict(zip((d.name for d in self.searched), point))
        return {d.name: float(point_of[d.name]) if d.is_continuous
                else self.values[d.name][int(point_of.get(d.name, 0))] for d in self.space}

    def encode(self, params: dict[str, Any]) -> list[Any] | None:
        """The point of a configuration, or None when it is not in the space (or not allowed)."""
        if not all(d.contains(params.get(d.name)) for d in self.space) \
                or not is_feasible(params, self.constraint):
            return None
        return [float(params[d.name]) if d.is_continuous else d.index_of(params[d.name])
                for d in self.searched]

    def allows(self, point: Sequence[Any]) -> bool:
        """The `space_constraint` for scikit-optimize (called for every sampled candidate)."""
        params = dict(self.fixed)
        for (name, table), value in zip(self.tables, point):
            params[name] = float(value) if table is None else table[value]
        return is_feasible(params, self.constraint)


class BayesianProposer:
    """The state of one Bayesian run: one scikit-optimize Optimizer, results not yet fitted, points in flight."""

    def __init__(self, search: BayesianSearch, already_done: Sequence[Evaluation]) -> None:
        self.search = search
        self.encoding = Encoding(search.space, search.constraint)
        self.rng = np.random.RandomState(search.seed)
        self.opt = self._optimizer() if self.encoding.searched else None
        self.new_points: list[list[Any]] = []
        self.new_values: list[float] = []
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

    def _optimizer(self) -> Any:
        from skopt import Optimizer as SkoptOptimizer
        from skopt.utils import cook_estimator

        dimensions = self.encoding.dimensions()
        estimator = cook_estimator("GP", space=dimensions, random_state=self.rng.randint(_SEED_RANGE))
        estimator.set_params(n_restarts_optimizer=0)
        constraint = None if self.search.constraint is None else self.encoding.allows
        return SkoptOptimizer(dimensions, base_estimator=estimator,
                              n_initial_points=self.search.n_initial_points, acq_func="EI",
                              acq_optimizer="sampling",
                              acq_optimizer_kwargs={"n_points": self.search.n_points},
                              space_constraint=constraint, model_queue_size=1,
                              random_state=self.rng.randint(_SEED_RANGE))

    def propose(self) -> dict[str, Any] | None:
        """The next configuration: random at first, then the model's pick."""
        if self.budget <= 0:
            return None
        point = self._next_point()
        if point is None or config_key(self.encoding.decode(point)) in self.seen:
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
        """Learn a finished evaluation (fitted into the model at the next ask)."""
        point = self.pending.pop(config_key(evaluation.params), None)
        if point is None:
            point = self.encoding.encode(evaluation.params)
        if point is not None:
            self._learn(point, evaluation.score)

    def _learn(self, point: list[Any], score: float | None) -> None:
        """Queue −score; an invalid result counts as the worst valid value (deferred until one exists)."""
        if score is None:
            if not self.valid_values:
                self.deferred.append(point)
                return
            self.new_points.append(point)
            self.new_values.append(max(self.valid_values))
            return
        self.valid_values.append(-score)
        self.new_points.append(point)
        self.new_values.append(-score)
        worst = max(self.valid_values)
        self.new_points.extend(self.deferred)
        self.new_values.extend([worst] * len(self.deferred))
        self.deferred.clear()

    def _next_point(self) -> list[Any] | None:
        if self.opt is None:
            return []
        with warnings.catch_warnings(), _single_threaded_blas():
            warnings.simplefilter("ignore")
            if len(self.opt.Xi) + len(self.new_points) < self.search.n_initial_points:
                self._flush(fit=False)
                return self._checked(self.opt.ask)
            return self._model_point()

    def _flush(self, fit: bool) -> None:
        if self.new_points:
            self.opt.tell(self.new_points, self.new_values, fit=fit)
            self.new_points, self.new_values = [], []

    def _model_point(self) -> list[Any] | None:
        """Fit once on every result plus a constant liar (the best value) per running point; ask."""
        running = list(self.pending.values())
        if not self.new_points and not running:
            return None
        told = self.new_values + self.opt.yi
        lie = min(told)
        refit = self._prepare_estimator()
        self.opt.tell(self.new_points + running, self.new_values + [lie] * len(running))
        if running:
            del self.opt.Xi[-len(running):], self.opt.yi[-len(running):]
            self.opt._n_initial_points += len(running)
        self.new_points, self.new_values = [], []
        if refit:
            self._keep_kernel(self.opt.models[-1])
        return list(self._checked(self.opt.ask))

    def _prepare_estimator(self) -> bool:
        """Warm-start the GP from the last kernel; re-optimise it after refit_every (later 20 %) more results.

        Returns whether the hyper-parameters are re-optimised in this fit.
        """
        estimator = self.opt.base_estimator_
        told = len(self.opt.Xi) + len(self.new_points)
        due = max(self.search.refit_every, told // 5)
        if self.kernel is not None and told - self.kernel_fitted_at < due:
            estimator.set_params(kernel=self.kernel, optimizer=None)
            return False
        if self.kernel is not None:
            estimator.set_params(kernel=self.kernel)
        estimator.set_params(optimizer="fmin_l_bfgs_b")
        self.kernel_fitted_at = told
        return True

    def _keep_kernel(self, model: Any) -> None:
        """Remember the fitted kernel (with its noise level) to start the next fit from."""
        from skopt.learning.gaussian_process.kernels import WhiteKernel

        noise = max(float(model.noise_ or 0.0), 1e-5)
        self.kernel = model.kernel_.k1 + WhiteKernel(noise_level=noise)

    def _checked(self, ask: Any) -> Any:
        try:
            return ask()
        except RuntimeError as error:
            raise InvalidInput.field("param_space", "no configuration satisfies the strategy's "
                                                    "constraints") from error

    def _unseen_point(self) -> list[Any] | None:
        """A random configuration not evaluated or running yet; a grid scan when draws keep repeating."""
        if self.opt is not None:
            points = self._checked(lambda: self.opt.space.rvs(RANDOM_TRIES, random_state=self.rng))
            for point in points:
                if config_key(self.encoding.decode(point)) not in self.seen:
                    return list(point)
        if any(d.is_continuous for d in self.search.space):
            return None
        for params in iter_grid(self.search.space):
            if config_key(params) not in self.seen and is_feasible(params, self.search.constraint):
                return self.encoding.encode(params)
        return None
