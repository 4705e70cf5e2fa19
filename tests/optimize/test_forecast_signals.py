"""What a search tells the job callback so that an ETA can be forecast: model fits done and to
come (Bayesian), none for grid and random."""

from __future__ import annotations

from trad.optimize import BayesianSearch, RandomSearch, build_search_space

from tests.optimize.toys import Toy, bowl


def calls_of(search) -> list[dict]:
    seen: list[dict] = []
    search.run(bowl, callback=lambda finished, total, score, metadata: seen.append(
        {"finished": finished, "fits": list(metadata["model_fits"]), "planned": list(metadata["planned_fits"])}))
    return seen


def test_a_bayesian_search_names_its_model_fits_before_they_come():
    seen = calls_of(BayesianSearch(build_search_space(Toy, {}), n_iterations=60, seed=3, n_points=200))
    assert seen[0]["planned"] == [10, 15, 23, 35, 53] and seen[0]["fits"] == []
    fitted = [results for results, seconds in seen[-1]["fits"]]
    assert fitted == [10, 15, 23, 35, 53] and all(seconds > 0 for _, seconds in seen[-1]["fits"])
    for call in seen:  # what is planned is what has not been fitted yet
        done = [results for results, _ in call["fits"]]
        assert done + call["planned"] == [10, 15, 23, 35, 53]
    assert seen[-1]["planned"] == []


def test_grid_and_random_searches_fit_no_model():
    seen = calls_of(RandomSearch(build_search_space(Toy, {}), n_iterations=20, seed=3))
    assert all(call["fits"] == [] and call["planned"] == [] for call in seen)
