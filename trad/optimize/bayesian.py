"""Bayesian search: a Gaussian-process model (scikit-optimize) picks each next configuration.

- The first `n_initial_points` configurations are random (scikit-optimize's `ask`).
- Then scikit-optimize's Optimizer is told the results (`tell`): it fits its Gaussian process
  (hyper-parameters re-optimised, warm-started from the last fit; BLAS single-threaded) and
  scores `n_points` freshly sampled candidates. The search adds neighbours of the best results
  (small Gaussian steps in the model's [0, 1] space) to these candidates, so the acquisition
  can refine around them, and proposes the unseen candidate of highest expected improvement
  (scikit-optimize's `gaussian_ei`). The model side lives in `trad.optimize.surrogate`.
- Between fits the model is not refitted: each new result updates its posterior over the
  candidates exactly (Gaussian-process conditioning with the fitted kernel). The next fit —
  new hyper-parameters, fresh candidates — comes once the results have grown by
  `refit_growth` (50 %: at 10, 15, 23, 35, 53, 80 … results). A fit costs ~10–20 ms here, an
  update well under a millisecond, so 100 episodes cost ~0.2 s of optimizer time (~2 ms per
  episode) instead of ~20 ms per episode for a fit per proposal.
- Scores are maximised: the model is told −score. An invalid result (too few trades, a
  non-finite value) is told as the worst valid value seen so far; results that are
  invalid before any valid one exists are told once one does.
- Constraints are respected by construction: scikit-optimize's `space_constraint` makes
  both the random points and the sampled candidates satisfy them, and neighbours that
  violate them are dropped, so an infeasible configuration is never proposed. The base
  Strategy's constraint (which allows everything) is not asked at all.
- Parallel (n_jobs > 1): a configuration is proposed whenever a slot frees, while other
  evaluations run; each point still running counts as a "constant liar" (the best value so
  far), so it is neither proposed again nor crowded around.
- Model fits are the expensive part (here ~0.3 s at 405 results, 2.4 s at 912, 4.7 s at
  1,368, load 3.5; an update costs ~0.7 ms per proposal at 100 results, 3.3 ms at 1,000): each
  is recorded in `fits` as (results, seconds), and `planned_fits(results)` names the result
  counts of the fits still to come, so an ETA can foresee them.
- Resume: every recorded result is told to the model first; their configurations are
  never proposed again. `total_episodes` counts them.
- With a seed and n_jobs=1 a run is reproducible; with n_jobs > 1 the order in which
  results arrive changes the model, so runs may differ.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from trad.errors import InvalidInput
from trad.optimize.base import Evaluation, Optimizer, checked_n_iterations
from trad.optimize.space import (Constraint, Dimension, config_key, grid_size, is_feasible,
                                 iter_grid)

COUNT_LIMIT = 200_000
RANDOM_TRIES = 100
NEIGHBOUR_SOURCES = 5
NEIGHBOURS_EACH = 40
NEIGHBOUR_STEP = 0.05
_SEED_RANGE = 2**31 - 1


class BayesianSearch(Optimizer):
    """Gaussian-process Bayesian optimisation with ask/tell, seeded and parallel-aware."""

    name = "bayesian"

    def __init__(self, space: Sequence[Dimension], *, n_iterations: int, seed: int | None = None,
                 constraint: Constraint | None = None, target_score: float | None = None,
                 patience: int | None = None, n_initial_points: int = 10, n_points: int = 1000,
                 refit_growth: float = 0.5) -> None:
        constraint = _effective_constraint(constraint)
        super().__init__(space, constraint=constraint, target_score=target_score, patience=patience)
        self.n_iterations = checked_n_iterations(n_iterations)
        self.seed = seed
        self.n_initial_points = max(1, n_initial_points)
        self.n_points = n_points
        self.refit_growth = max(0.0, refit_growth)
        self._total = min(self.n_iterations, _allowed_count(self.space, constraint, self.n_iterations))
        self.encoding = Encoding(self.space, constraint)
        self.dimensions = self.encoding.dimensions()  # built here: scikit-optimize's are slow to create
        import trad.optimize.surrogate  # noqa: F401  (loaded here, so its import time is not charged to the run)
        _blas_threads()

    @property
    def total_episodes(self) -> int:
        """n_iterations, or fewer when the space allows fewer configurations."""
        return self._total

    def proposer(self, already_done: Sequence[Evaluation]) -> BayesianProposer:
        """A model that has been told every result of `already_done`."""
        return BayesianProposer(self, already_done)


def _effective_constraint(constraint: Constraint | None) -> Constraint | None:
    """None for the base Strategy's constraint, which allows everything: no need to ask it about
    each of the ~1,000 candidates of every fit."""
    from trad.strategies.base import Strategy

    if getattr(constraint, "__func__", None) is Strategy.constraint_violation.__func__:
        return None
    return constraint


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


@cache
def _blas_threads() -> Any:
    """The controller of BLAS's thread pools (finding the libraries takes ~50 ms: done once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _single_threaded_blas() -> Any:
    """BLAS limited to one thread: on small GP matrices its threads only fight each other
    (and the worker processes) — measured 3x faster here."""
    return _blas_threads().limit(limits=1, user_api="blas")


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
    """The state of one Bayesian run: the scikit-optimize Optimizer, its candidates, results since its last fit."""

    def __init__(self, search: BayesianSearch, already_done: Sequence[Evaluation]) -> None:
        self.search = search
        self.encoding = search.encoding
        self.rng = np.random.RandomState(search.seed)
        self.opt = self._optimizer() if self.encoding.searched else None
        self.new_points: list[list[Any]] = []
        self.new_values: list[float] = []
        self.valid_values: list[float] = []
        self.deferred: list[list[Any]] = []
        self.pending: dict[tuple, list[Any]] = {}
        self.seen: set[tuple] = set()
        self.kernel: Any = None
        self.pool: Any = None
        self.fits: list[tuple[int, float]] = []
        self.finished_before = min(len(already_done), search.total_episodes)
        self.budget = search.total_episodes - self.finished_before
        for evaluation in already_done:
            self.seen.add(config_key(evaluation.params))
            point = self.encoding.encode(evaluation.params)
            if point is not None:
                self._learn(point, evaluation.score)

    def _optimizer(self) -> Any:
        from skopt import Optimizer as SkoptOptimizer

        from trad.optimize.surrogate import CandidateGP, TabledSpace, default_kernel

        estimator = CandidateGP(normalize_y=True, noise="gaussian",
                                random_state=self.rng.randint(_SEED_RANGE))
        constraint = None if self.search.constraint is None else self.encoding.allows
        opt = SkoptOptimizer(self.search.dimensions, base_estimator=estimator,
                             n_initial_points=self.search.n_initial_points, acq_func="EI",
                             acq_optimizer="sampling",
                             acq_optimizer_kwargs={"n_points": self.search.n_points},
                             space_constraint=constraint, model_queue_size=1,
                             random_state=self.rng.randint(_SEED_RANGE))
        opt.space = TabledSpace(opt.space)
        estimator.set_params(kernel=default_kernel(opt.space))
        return opt

    def propose(self) -> dict[str, Any] | None:
        """The next configuration: random at first, then the model's pick."""
        if self.budget <= 0:
            return None
        point = self._next_point()
        if point is None or self._is_seen(point):
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
        """Learn a finished evaluation (used from the next proposal on)."""
        point = self.pending.pop(config_key(evaluation.params), None)
        if point is None:
            point = self.encoding.encode(evaluation.params)
        if point is not None:
            self._learn(point, evaluation.score)

    def _learn(self, point: list[Any], score: float | None) -> None:
        """Keep −score; an invalid result counts as the worst valid value (deferred until one exists)."""
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

    def _is_seen(self, point: Sequence[Any]) -> bool:
        return config_key(self.encoding.decode(point)) in self.seen

    def _next_point(self) -> list[Any] | None:
        if self.opt is None:
            return []
        with warnings.catch_warnings(), _single_threaded_blas():
            warnings.simplefilter("ignore")
            if len(self.opt.Xi) + len(self.new_points) < self.search.n_initial_points:
                if self.new_points:
                    self.opt.tell(self.new_points, self.new_values, fit=False)
                    self.new_points, self.new_values = [], []
                return self._checked(self.opt.ask)
            if self._refit_due():
                self._refit()
            return self._pool_point()

    def _refit_due(self) -> bool:
        """Whether there is no model yet, or the results grew by `refit_growth` since its fit."""
        if not self.new_points:
            return False
        growth = math.ceil(len(self.opt.Xi) * self.search.refit_growth)
        return self.pool is None or len(self.new_points) >= max(1, growth)

    def planned_fits(self, results: int) -> list[int]:
        """The result counts at which the model will be fitted again before it has learnt `results`."""
        last = self.fits[-1][0] if self.fits else 0
        planned = []
        size = last if last else self.search.n_initial_points
        if last:
            size = last + max(1, math.ceil(last * self.search.refit_growth))
        while size < results:
            planned.append(size)
            size += max(1, math.ceil(size * self.search.refit_growth))
        return planned

    def _refit(self) -> None:
        """Tell scikit-optimize the new results: it fits the model (warm-started) and scores fresh candidates."""
        from trad.optimize.surrogate import CandidatePool

        started = time.perf_counter()
        if self.kernel is not None:
            self.opt.base_estimator_.set_params(kernel=self.kernel)
        self._checked(lambda: self.opt.tell(self.new_points, self.new_values))
        self.new_points, self.new_values = [], []
        model = self.opt.models[-1]
        self.kernel = _warm_kernel(model)
        self.pool = CandidatePool(model, self.opt.space, self._neighbours_of_best())
        self.fits.append((len(self.opt.Xi), time.perf_counter() - started))

    def _neighbours_of_best(self) -> list[list[Any]]:
        """Allowed configurations a small Gaussian step (in the model's [0, 1] space) from the best results."""
        space = self.opt.space
        best = np.argsort(self.opt.yi, kind="stable")[:NEIGHBOUR_SOURCES]
        centres = np.asarray(space.transform([self.opt.Xi[i] for i in best]), dtype=float)
        steps = self.rng.normal(0.0, NEIGHBOUR_STEP, (len(centres) * NEIGHBOURS_EACH, centres.shape[1]))
        points = space.inverse_transform(np.clip(np.repeat(centres, NEIGHBOURS_EACH, axis=0) + steps, 0, 1))
        if self.search.constraint is None:
            return points
        return [point for point in points if self.encoding.allows(point)]

    def _pool_point(self) -> list[Any] | None:
        """The unseen candidate of highest expected improvement, given results and running points since the fit."""
        if self.pool is None:
            return None
        best = min(self.opt.yi + self.new_values)
        self.pool.condition(self.new_points, self.new_values, list(self.pending.values()), best)
        return self.pool.best_unseen(best, self._is_seen)

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
                if not self._is_seen(point):
                    return list(point)
        if any(d.is_continuous for d in self.search.space):
            return None
        for params in iter_grid(self.search.space):
            if config_key(params) not in self.seen and is_feasible(params, self.search.constraint):
                return self.encoding.encode(params)
        return None


def _warm_kernel(model: Any) -> Any:
    """The fitted kernel with its noise level, to start the next fit from."""
    from skopt.learning.gaussian_process.kernels import WhiteKernel

    noise = max(float(model.noise_ or 0.0), 1e-5)
    return model.kernel_.k1 + WhiteKernel(noise_level=noise)
