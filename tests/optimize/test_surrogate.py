"""The Bayesian search's model side: the fast code paths compute what scikit-optimize and sklearn do."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import WhiteKernel
from skopt.space import Categorical, Integer, Real
from skopt.utils import cook_estimator

from trad.optimize.surrogate import CandidateGP, CandidatePool, TabledSpace, default_kernel

MIXED = [Integer(0, 19), Integer(0, 6), Real(0.0, 1.0), Categorical([0, 1, 2]), Integer(0, 47)]


def observations(dimensions, n, seed=0):
    """A normalised space and n noisy observations of a smooth function on it."""
    rng = np.random.RandomState(seed)
    space = Optimizer(dimensions, base_estimator="GP", random_state=seed).space
    points = space.rvs(n, random_state=rng)
    X = np.asarray(space.transform(points), dtype=float)
    y = ((X - 0.3) ** 2).sum(axis=1) + 0.01 * rng.randn(n)
    return space, points, X, y


def fitted(dimensions, n, seed=0):
    space, points, X, y = observations(dimensions, n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CandidateGP(kernel=default_kernel(space), normalize_y=True, noise="gaussian",
                            random_state=0).fit(X, y)
    return space, points, X, y, model


@pytest.mark.parametrize("dimensions", [MIXED, [Integer(0, 9)]], ids=["anisotropic", "one-dimension"])
def test_likelihood_and_gradient_are_sklearns(dimensions):
    model = fitted(dimensions, 30)[-1]
    model.kernel_ = model.kernel_.k1 + WhiteKernel(noise_level=0.01)
    rng = np.random.RandomState(1)
    for _ in range(5):
        theta = model.kernel_.theta + rng.normal(0.0, 0.5, model.kernel_.theta.shape)
        value, gradient = model.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)
        expected, expected_gradient = GaussianProcessRegressor.log_marginal_likelihood(
            model, theta, eval_gradient=True)
        assert value == pytest.approx(expected, rel=1e-9)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-7, atol=1e-9)
        assert model.log_marginal_likelihood(theta) == pytest.approx(expected, rel=1e-9)


def test_fit_and_predict_match_scikit_optimize():
    space, _, X, y, model = fitted(MIXED, 40)
    reference = cook_estimator("GP", space=space, random_state=0).set_params(n_restarts_optimizer=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X, y)
    np.testing.assert_allclose(model.kernel_.k1.theta, reference.kernel_.k1.theta, rtol=1e-4)
    candidates = np.asarray(space.transform(space.rvs(200, random_state=3)), dtype=float)
    mean, std = model.predict(candidates, return_std=True)
    expected_mean, expected_std = GaussianProcessRegressor.predict(model, candidates, return_std=True)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(std, expected_std, rtol=1e-4)
    np.testing.assert_allclose(model.covariance(candidates, X), model.kernel_(candidates, X), atol=1e-12)


def test_the_tabled_transform_is_scikit_optimizes():
    dimensions = MIXED + [Categorical([0, 1]), Categorical(["low", "high", "mid"]), Integer(5, 9)]
    space = Optimizer(dimensions, base_estimator="GP", random_state=0).space
    tabled = TabledSpace(space)
    assert [table is None for table in tabled.tables] == [False, False, True, False, False, False, True, False]
    points = space.rvs(300, random_state=4)
    np.testing.assert_array_equal(tabled.transform(points), space.transform(points))
    np.testing.assert_array_equal(tabled.transform(np.asarray(points, dtype=object)[:7].tolist()),
                                  space.transform(points[:7]))
    with pytest.raises(ValueError):
        tabled.transform([[20] + points[0][1:]])


def test_tabled_draws_are_uniform_over_the_grid_and_respect_the_constraint():
    space = Optimizer([Integer(0, 4), Real(2.0, 3.0), Categorical([0, 1, 2])], base_estimator="GP",
                      random_state=0, space_constraint=lambda row: row[0] != 3).space
    tabled = TabledSpace(space)
    points = tabled.rvs(8000, random_state=5)
    assert points == tabled.rvs(8000, random_state=5) and len(points) == 8000
    counts = Counter(point[0] for point in points)
    assert set(counts) == {0, 1, 2, 4}
    assert all(1800 < count < 2200 for count in counts.values())  # ends as likely as the middle
    assert all(2.0 <= point[1] <= 3.0 for point in points)
    assert Counter(point[2] for point in points).keys() == {0, 1, 2}
    assert tabled.transform(points).shape == space.transform(points).shape


def test_other_kernels_take_the_inherited_paths():
    *_, X, _, model = fitted([Categorical(list(range(6))), Categorical(list(range(5)))], 20)
    assert type(model.kernel_.k1.k2).__name__ == "HammingKernel"
    model.kernel_ = model.kernel_.k1 + WhiteKernel(noise_level=0.01)
    theta = model.kernel_.theta.copy()
    assert model.log_marginal_likelihood(theta) == \
        GaussianProcessRegressor.log_marginal_likelihood(model, theta)
    np.testing.assert_allclose(model.covariance(X, X), model.kernel_(X, X))


def refitted_posterior(model, X, y, extra_X, extra_y, candidates):
    """The posterior over `candidates` of a GP with the model's fitted kernel held fixed, fitted on
    every observation in the model's normalised units."""
    scale, offset = float(model.y_train_std_), float(model.y_train_mean_)
    kernel = model.kernel_.k1 + WhiteKernel(noise_level=float(model.noise_), noise_level_bounds="fixed")
    from sklearn.gaussian_process import GaussianProcessRegressor as Plain
    plain = Plain(kernel=kernel, optimizer=None, normalize_y=False, alpha=model.alpha)
    plain.fit(np.vstack([X, extra_X]), (np.concatenate([y, extra_y]) - offset) / scale)
    mean, std = plain.predict(candidates, return_std=True)
    return mean, std ** 2 - float(model.noise_)


def test_the_pool_conditions_exactly_on_results_told_since_the_fit():
    space, _, X, y, model = fitted(MIXED, 25)
    model.predict(np.asarray(space.transform(space.rvs(300, random_state=5)), dtype=float), return_std=True)
    pool = CandidatePool(model, space, extra=space.rvs(20, random_state=6))
    later = space.rvs(22, random_state=7)
    later_X = np.asarray(space.transform(later), dtype=float)
    later_y = ((later_X - 0.3) ** 2).sum(axis=1)
    pool.condition(later[:4], list(later_y[:4]), running=later[4:6], lie=float(y.min()))
    lies = np.full(2, y.min())
    mean, var = refitted_posterior(model, X, y, later_X[:6], np.concatenate([later_y[:4], lies]), pool.points)
    np.testing.assert_allclose(pool.current.mean, mean, atol=1e-6)
    np.testing.assert_allclose(pool.current.var, np.maximum(var, 0.0), atol=1e-6)
    pool.condition(later, list(later_y), running=[], lie=0.0)
    mean, var = refitted_posterior(model, X, y, later_X, later_y, pool.points)
    np.testing.assert_allclose(pool.observed.mean, mean, atol=1e-6)
    np.testing.assert_allclose(pool.observed.var, np.maximum(var, 0.0), atol=1e-6)
    assert pool.current is pool.observed


def test_running_points_added_one_by_one_give_the_same_posterior():
    space, _, X, y, model = fitted(MIXED, 25)
    model.predict(np.asarray(space.transform(space.rvs(300, random_state=5)), dtype=float), return_std=True)
    later = space.rvs(8, random_state=7)
    later_y = list(((np.asarray(space.transform(later), dtype=float) - 0.3) ** 2).sum(axis=1))
    stepwise, at_once = (CandidatePool(model, space, extra=[]) for _ in range(2))
    lie = float(y.min())
    stepwise.condition(later[:2], later_y[:2], running=later[2:3], lie=lie)
    stepwise.condition(later[:2], later_y[:2], running=later[2:4], lie=lie)
    stepwise.condition(later[:2], later_y[:2], running=later[2:5], lie=lie)
    at_once.condition(later[:2], later_y[:2], running=later[2:5], lie=lie)
    np.testing.assert_allclose(stepwise.current.mean, at_once.current.mean, atol=1e-9)
    np.testing.assert_allclose(stepwise.current.var, at_once.current.var, atol=1e-9)
    # A result arrives and a running point ends: conditioned afresh.
    stepwise.condition(later[:3], later_y[:3], running=later[3:6], lie=lie)
    at_once = CandidatePool(model, space, extra=[])
    at_once.condition(later[:3], later_y[:3], running=later[3:6], lie=lie)
    np.testing.assert_allclose(stepwise.current.mean, at_once.current.mean, atol=1e-9)
    np.testing.assert_allclose(stepwise.current.var, at_once.current.var, atol=1e-9)


def test_the_pool_offers_each_unseen_candidate_once():
    space, _, _, y, model = fitted([Integer(0, 3), Integer(0, 2)], 4)
    model.predict(np.asarray(space.transform(space.rvs(50, random_state=1)), dtype=float), return_std=True)
    pool = CandidatePool(model, space, extra=[])
    seen = {(0, 0)}
    offered = []
    while (point := pool.best_unseen(float(y.min()), lambda p: tuple(int(v) for v in p) in seen)) is not None:
        key = tuple(int(v) for v in point)
        offered.append(key)
        seen.add(key)
    assert sorted(offered) == sorted(set(offered)) and (0, 0) not in offered
    assert len(offered) <= 11
