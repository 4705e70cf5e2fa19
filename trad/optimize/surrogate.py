"""The Bayesian search's model side: scikit-optimize's Gaussian process made cheap, and its candidates.

Imported when a Bayesian search is created (it loads scikit-optimize), never by `trad.optimize`.

- `CandidateGP` is scikit-optimize's `GaussianProcessRegressor` with faster code paths that
  compute the same numbers: `predict(X, return_std=True)` by one matrix product (its
  3-operand einsum took ~10 ms for 1,000 candidates), and for the kernel scikit-optimize
  uses (constant × Matern ν=2.5 + white noise, `default_kernel`) the kernel itself and the
  log-marginal likelihood with its gradient in plain numpy/LAPACK (sklearn's generic kernel
  machinery took ~1 ms per evaluation, and a hyper-parameter fit evaluates it 20–70
  times). Other kernels (all-categorical spaces get a Hamming kernel) take sklearn's paths.
- `CandidatePool` holds the candidates of one fit with the model's posterior over them, and
  conditions it exactly on the points told since the fit (Cholesky rows added one at a
  time); `best_unseen` is the candidate of highest expected improvement (scikit-optimize's
  `gaussian_ei`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack
from scipy.spatial.distance import cdist
from scipy.special import ndtr
from sklearn.gaussian_process.kernels import Product, Sum
from sklearn.utils import check_random_state
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import (
    ConstantKernel,
    HammingKernel,
    Matern,
    WhiteKernel,
)
from skopt.space import Categorical, Integer, Real, Space

EI_XI = 0.01
RVS_ROUNDS = 10_000
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class TabledSpace(Space):
    """A scikit-optimize Space made cheap for the ~1,000 candidates of every model fit.

    - `transform` looks each grid value up in a table made once from its dimension's own
      transform (same numbers; the row-by-row repacking took ~1.5 ms per 1,000 points).
      Continuous dimensions keep their transform, applied to the whole column.
    - `rvs` draws each column at once with the given random state: grid values uniformly
      (scikit-optimize rounds a uniform draw on the normalised range, which gives the two end
      values half the weight of the others), continuous values uniformly in their range.
      The constraint filters the rows as scikit-optimize's does.
    """

    def __init__(self, space: Space) -> None:
        super().__init__(space.dimensions, constraint=space.constraint)
        self.tables = [_table(dimension) for dimension in self.dimensions]
        self.drawable = all(table is not None or _is_uniform_real(dimension)
                            for dimension, table in zip(self.dimensions, self.tables))

    def rvs(self, n_samples: int = 1, random_state: Any = None) -> list[list[Any]]:
        if not self.drawable:
            return super().rvs(n_samples, random_state)
        rng = check_random_state(random_state)
        points: list[list[Any]] = []
        for _ in range(RVS_ROUNDS):
            columns = [rng.uniform(dimension.low, dimension.high, n_samples).tolist() if table is None
                       else rng.randint(table[0], table[0] + len(table[1]), n_samples).tolist()
                       for dimension, table in zip(self.dimensions, self.tables)]
            rows = [list(row) for row in zip(*columns)]
            if self.constraint is not None:
                rows = [row for row in rows if self.constraint(row)]
            points.extend(rows)
            if len(points) >= n_samples:
                return points[:n_samples]
        raise RuntimeError("Could not find enough valid samples in constrained space.")

    def transform(self, X: Any) -> Any:
        if len(X) == 0:
            return super().transform(X)
        columns = []
        for dimension, table, values in zip(self.dimensions, self.tables, zip(*X)):
            if table is None:
                columns.append(np.asarray(dimension.transform(list(values)), dtype=float).reshape(len(X), -1))
            else:
                offset, rows = table
                index = np.rint(np.asarray(values, dtype=float)).astype(np.intp) - offset
                if index.min() < 0 or index.max() >= len(rows):
                    raise ValueError(f"{dimension.name}: a value outside {dimension}")
                columns.append(rows[index])
        return np.hstack(columns)


def _is_uniform_real(dimension: Any) -> bool:
    return isinstance(dimension, Real) and dimension.prior == "uniform"


def _table(dimension: Any) -> tuple[int, Any] | None:
    """(lowest value, transformed rows of every value) of an Integer or a Categorical of 0…k−1."""
    if isinstance(dimension, Integer):
        values = list(range(int(dimension.low), int(dimension.high) + 1))
    elif isinstance(dimension, Categorical) and list(dimension.categories) == list(range(len(dimension.categories))):
        values = list(dimension.categories)
    else:
        return None
    rows = np.asarray(dimension.transform(values), dtype=float).reshape(len(values), -1)
    return values[0], rows


def default_kernel(space: Any) -> Any:
    """scikit-optimize's default kernel for a normalised space (as `cook_estimator("GP")` builds it)."""
    n = space.transformed_n_dims
    other = HammingKernel(length_scale=np.ones(n)) if space.is_categorical \
        else Matern(length_scale=np.ones(n), length_scale_bounds=[(0.01, 100)] * n, nu=2.5)
    return ConstantKernel(1.0, (0.01, 1000.0)) * other


class CandidateGP(GaussianProcessRegressor):
    """scikit-optimize's Gaussian process; `scored_` keeps what the last `predict(X, return_std=True)` computed."""

    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False,
                return_mean_grad: bool = False, return_std_grad: bool = False) -> Any:
        """The posterior mean (and std) at X, as scikit-optimize computes it."""
        if not return_std or return_cov or return_mean_grad or return_std_grad \
                or not hasattr(self, "X_train_"):
            return super().predict(X, return_std, return_cov, return_mean_grad, return_std_grad)
        X = np.asarray(X, dtype=float)
        k_trans = self.covariance(X, self.X_train_)
        mean = k_trans @ self.alpha_
        var = np.maximum(self.kernel_.diag(X) - np.einsum("ij,ij->i", k_trans @ self.K_inv_, k_trans), 0.0)
        self.scored_ = (X, k_trans, mean, var)
        return self.y_train_std_ * mean + self.y_train_mean_, np.sqrt(var) * self.y_train_std_

    def covariance(self, A: Any, B: Any) -> Any:
        """The fitted kernel between the rows of A and of B (noise-free), as `kernel_(A, B)` gives it."""
        if self._fast_theta_size() < 0:
            return self.kernel_(A, B)
        signal = self.kernel_.k1
        root5_r = math.sqrt(5.0) * cdist(A / signal.k2.length_scale, B / signal.k2.length_scale)
        return signal.k1.constant_value * (1.0 + root5_r + root5_r ** 2 / 3.0) * np.exp(-root5_r)

    def log_marginal_likelihood(self, theta: Any = None, eval_gradient: bool = False,
                                clone_kernel: bool = True) -> Any:
        """sklearn's log-marginal likelihood (and gradient in log-hyper-parameters) of `theta`."""
        if theta is None or len(theta) != self._fast_theta_size():
            return super().log_marginal_likelihood(theta, eval_gradient, clone_kernel)
        return _matern_likelihood(np.asarray(theta, dtype=float), self._pair_squares(), self.y_train_,
                                  self.alpha, eval_gradient)

    def _pair_squares(self) -> Any:
        """The squared differences of every pair of training points, per dimension (n², d): computed
        once per fit, for the 20–70 likelihood evaluations of its hyper-parameter search."""
        cached = getattr(self, "_pairs", None)
        if cached is None or cached[0] is not self.X_train_:
            X = np.asarray(self.X_train_, dtype=float)
            squares = (X[:, None, :] - X[None, :, :]) ** 2
            cached = self._pairs = (self.X_train_, squares.reshape(len(X) ** 2, X.shape[1]))
        return cached[1]

    def _fast_theta_size(self) -> int:
        """The size of theta when the fast likelihood applies, else −1 (checked once per kernel:
        sklearn's kernel introspection is itself slow)."""
        if getattr(self, "_checked_kernel", None) is not self.kernel_:
            fast = _is_matern_with_noise(self.kernel_) and np.ndim(self.y_train_) == 1 \
                and np.ndim(self.alpha) == 0
            self._checked_kernel, self._theta_size = self.kernel_, self.kernel_.n_dims if fast else -1
        return self._theta_size


def _is_matern_with_noise(kernel: Any) -> bool:
    """Whether `kernel` is constant × Matern(ν=2.5) + white noise with every hyper-parameter free."""
    if not (isinstance(kernel, Sum) and isinstance(kernel.k1, Product)
            and isinstance(kernel.k2, WhiteKernel) and isinstance(kernel.k1.k1, ConstantKernel)
            and isinstance(kernel.k1.k2, Matern) and kernel.k1.k2.nu == 2.5):
        return False
    return not any(h.fixed for h in kernel.hyperparameters)


def _matern_likelihood(theta: Any, pair_squares: Any, y: Any, jitter: float, eval_gradient: bool) -> Any:
    """theta = log(constant, length scale(s), noise level); the formulas of sklearn's Matern ν=2.5.
    `pair_squares` holds (x_ik − x_jk)² for every pair (i, j), one row per pair."""
    constant, length_scale, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
    n = len(y)
    inverse_square = np.broadcast_to(length_scale ** -2.0, pair_squares.shape[1:])
    distance2 = (pair_squares @ inverse_square).reshape(n, n)
    root5_r = np.sqrt(5.0 * distance2)
    decay = np.exp(-root5_r)
    signal = constant * (1.0 + root5_r + root5_r ** 2 / 3.0) * decay
    K = signal + (noise + jitter) * np.eye(n)
    lower, failed = lapack.dpotrf(K, lower=1, clean=1)
    if failed:
        return (-np.inf, np.zeros_like(theta)) if eval_gradient else -np.inf
    weights = lapack.dpotrs(lower, y, lower=1)[0]
    value = -0.5 * y @ weights - np.log(np.diag(lower)).sum() - n * _HALF_LOG_2PI
    if not eval_gradient:
        return value
    inverse = lapack.dpotri(lower, lower=1)[0]
    inverse = inverse + np.tril(inverse, -1).T
    inner = np.outer(weights, weights) - inverse
    slope = inner * (constant * 5.0 / 3.0 * (1.0 + root5_r) * decay)
    if length_scale.size == 1:
        by_length = [np.sum(slope * distance2)]
    else:
        by_length = (slope.reshape(-1) @ pair_squares) * inverse_square
    gradient = [np.sum(inner * signal), *by_length, noise * np.trace(inner)]
    return value, 0.5 * np.asarray(gradient)


class CandidatePool:
    """The candidates of one fit (those the model scored plus `extra` points) and the model's posterior
    over them, conditioned on the points told since the fit."""

    def __init__(self, model: CandidateGP, space: Any, extra: list[list[Any]]) -> None:
        self.model, self.space = model, space
        parts = [model.scored_]
        if extra:
            model.predict(np.asarray(space.transform(extra), dtype=float), return_std=True)
            parts.append(model.scored_)
        self.points, self.k_trans, mean, var = (np.concatenate(p) for p in zip(*parts))
        self.originals = _original_columns(space, self.points)
        self.scale, self.offset = float(model.y_train_std_), float(model.y_train_mean_)
        self.noise = float(model.noise_ or 0.0) + float(np.max(model.alpha))
        self.taken = np.zeros(len(self.points), dtype=bool)
        self.stacked = np.vstack([model.X_train_, self.points])
        self.told = _ToldRows(len(self.points), self.points.shape[1], len(model.X_train_))
        self.observed = self.current = _Posterior(mean, var, 0)
        self.absorbed = 0
        self.running: list[tuple] = []
        self.lie = math.nan
        self.vectors: dict[tuple, Any] = {}
        self.columns: dict[tuple, tuple[Any, Any, Any]] = {}

    def condition(self, observed: list[list[Any]], values: list[float], running: list[list[Any]],
                  lie: float) -> None:
        """Condition on the results told since the fit (each once) and, for now, on `running` points
        told `lie`. When no result came since the last call and the running points then are the
        first of those now (the usual case: one more was proposed), only the new ones are told."""
        keys = [tuple(point) for point in running]
        if len(observed) > self.absorbed or lie != self.lie or keys[:len(self.running)] != self.running:
            for point, value in zip(observed[self.absorbed:], values[self.absorbed:]):
                self.observed = self._told(self.observed, point, value)
            self.absorbed = len(observed)
            self.current, self.running, self.lie = self.observed, [], lie
        for point in running[len(self.running):]:
            self.current = self._told(self.current, point, lie)
        self.running = keys

    def best_unseen(self, best: float, is_seen: Callable[[list[Any]], bool]) -> list[Any] | None:
        """The candidate of highest expected improvement below `best` not seen yet (None: none left)."""
        improvement = expected_improvement(self.scale * self.current.mean + self.offset,
                                           self.scale * np.sqrt(self.current.var), best)
        improvement[self.taken] = -np.inf
        while not self.taken.all():
            row = int(np.argmax(improvement))
            self.taken[row], improvement[row] = True, -np.inf
            point = [column[row] for column in self.originals]
            if not is_seen(point):
                self.vectors[tuple(point)] = self.points[row]
                return point
        return None

    def _told(self, posterior: _Posterior, point: list[Any], value: float) -> _Posterior:
        """`posterior` conditioned on one more (point, −score); its row m of `told` is (over)written."""
        model, told, m = self.model, self.told, posterior.size
        vector, k_train, cross = self._columns(point)
        told.reserve(m + 1)
        told.vectors[m], told.k_train[m] = vector, k_train
        among = model.covariance(told.vectors[:m + 1], vector[None, :])[:, 0] \
            - told.k_train[:m + 1] @ (model.K_inv_ @ k_train)
        link = lapack.dtrtrs(told.lower[:m, :m], among[:m], lower=1)[0] if m else among[:0]
        pivot = math.sqrt(max(among[m] + self.noise - link @ link, self.noise))
        half = told.half[m]
        np.subtract(cross, link @ told.half[:m], out=half)
        half /= pivot
        projected = (((value - self.offset) / self.scale - k_train @ model.alpha_)
                     - link @ told.projected[:m]) / pivot
        told.lower[m, :m], told.lower[m, m], told.projected[m] = link, pivot, projected
        return _Posterior(posterior.mean + projected * half,
                          np.maximum(posterior.var - half * half, 0.0), m + 1)


    def _columns(self, point: list[Any]) -> tuple[Any, Any, Any]:
        """A told point's vector, its kernel against the training data, and its prior covariance with the
        candidates (computed once per point: a running point is told again at every proposal)."""
        key = tuple(point)
        if key not in self.columns:
            vector = self.vectors.get(key)
            if vector is None:
                vector = np.asarray(self.space.transform([point]), dtype=float)[0]
            column = self.model.covariance(self.stacked, vector[None, :])[:, 0]
            n = len(self.model.X_train_)
            k_train = column[:n]
            self.columns[key] = (vector, k_train, column[n:] - self.k_trans @ (self.model.K_inv_ @ k_train))
        return self.columns[key]


@dataclass(frozen=True)
class _Posterior:
    """The posterior mean and variance over the candidates given the first `size` told rows
    (normalised units)."""

    mean: Any
    var: Any
    size: int


class _ToldRows:
    """Points told since the fit, one row each: the Cholesky factor `lower` of their prior covariance,
    `half` = lower⁻¹·(their covariance with the candidates), `projected` = lower⁻¹·(their residuals),
    their vectors and kernel against the training data. Rows grow in place (no copies per point)."""

    def __init__(self, n_candidates: int, width: int, n_train: int) -> None:
        self.shapes = (n_candidates, width, n_train)
        self.capacity = 0
        self.reserve(16)

    def reserve(self, rows: int) -> None:
        """Room for at least `rows` rows, keeping those written."""
        if rows <= self.capacity:
            return
        capacity = max(rows, 2 * self.capacity)
        n_candidates, width, n_train = self.shapes
        grown = {"lower": (capacity, capacity), "half": (capacity, n_candidates),
                 "projected": (capacity,), "vectors": (capacity, width), "k_train": (capacity, n_train)}
        for name, shape in grown.items():
            array = np.zeros(shape)
            if self.capacity:
                old = getattr(self, name)
                array[tuple(slice(0, size) for size in old.shape)] = old
            setattr(self, name, array)
        self.capacity = capacity


def _original_columns(space: Any, points: Any) -> list[Any]:
    """Each dimension's original values of the candidates: `space.inverse_transform`, not transposed."""
    columns, start = [], 0
    for dimension in space.dimensions:
        width = dimension.transformed_size
        block = points[:, start] if width == 1 else points[:, start:start + width]
        columns.append(dimension.inverse_transform(block))
        start += width
    return columns


def expected_improvement(mean: Any, std: Any, best: float) -> Any:
    """scikit-optimize's `gaussian_ei` given a mean and std: the expected improvement below `best` − xi."""
    improve = best - EI_XI - mean
    safe = np.where(std > 0, std, 1.0)
    z = improve / safe
    value = improve * ndtr(z) + safe * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return np.where(std > 0, value, 0.0)
