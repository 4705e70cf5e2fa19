"""GET /metrics in pages: all, after an iteration, or the latest `limit` (skipping the newest `offset`);
each page's running best covers every earlier iteration, and a client that asks only for what is new
misses nothing, even when parallel episodes are recorded out of order."""

from __future__ import annotations

import math

import pytest

from tests.api.support import JOBS, assert_error, job_body, wait_for
from trad.store.metrics import insert_metrics

# (iteration, score, valid): invalid, NaN and infinite scores never count as the best; 7 is missing.
SCORES = [(1, None, False), (2, 0.5, True), (3, float("nan"), True), (4, 9.0, False), (5, float("inf"), True),
          (6, 0.7, True), (8, -1.0, True), (9, 0.9, True), (10, 0.2, True)]


def record(db, job_id: int, scores) -> None:
    with db.transaction() as conn:
        insert_metrics(conn, job_id, [{"iteration": i, "score": s, "valid": v, "params": {"i": i}, "metrics": {},
                                       "duration_ms": 1.0} for i, s, v in scores])


def best_so_far(upto: int) -> float | None:
    valid = [s for i, s, v in SCORES if i <= upto and v and s is not None and math.isfinite(s)]
    return max(valid, default=None)


@pytest.fixture
def scored_job(client, db, make_job):
    job = make_job()
    record(db, job["id"], SCORES)
    return job


@pytest.mark.parametrize("query, iterations", [
    ("", [1, 2, 3, 4, 5, 6, 8, 9, 10]),
    ("?limit=3", [8, 9, 10]),
    ("?limit=3&offset=3", [4, 5, 6]),
    ("?limit=100&offset=7", [1, 2]),
    ("?offset=8", [1]),
    ("?after_iteration=5", [6, 8, 9, 10]),
    ("?after_iteration=5&limit=2", [6, 8]),
    ("?after_iteration=10", []),
])
def test_a_page_holds_its_iterations_with_the_running_best_of_the_whole_job(client, scored_job, query, iterations):
    page = client.get(f"{JOBS}/{scored_job['id']}/metrics{query}").get_json()
    assert page["iterations"] == iterations
    assert page["best_score"] == [best_so_far(i) for i in iterations]
    assert page["params"] == [{"i": i} for i in iterations] and len(page["score"]) == len(page["valid"])
    assert page["meta"] == {"total": len(SCORES), "complete_through": 6}  # 7 is missing: it may come yet


@pytest.mark.parametrize("query, field", [("?limit=0", "limit"), ("?limit=10001", "limit"), ("?offset=-1", "offset"),
                                          ("?after_iteration=-1", "after_iteration"),
                                          ("?after_iteration=x", "after_iteration"),
                                          ("?after_iteration=2&offset=1", "offset")])
def test_bad_paging_is_a_422_naming_the_parameter(client, scored_job, query, field):
    assert_error(client.get(f"{JOBS}/{scored_job['id']}/metrics{query}"), 422, "VALIDATION_ERROR", field)


def test_an_episode_recorded_after_a_later_one_is_fetched_too(client, db, make_job):
    """Parallel episodes finish out of order, and a resume fills the gap a stop left: the cursor
    stops at the first missing iteration, whatever the job's state."""
    job = make_job(status="running")
    record(db, job["id"], [(1, 0.1, True), (2, 0.2, True), (4, 0.4, True)])  # episode 3 runs longer than 4
    first = client.get(f"{JOBS}/{job['id']}/metrics").get_json()
    assert first["iterations"] == [1, 2, 4] and first["meta"]["complete_through"] == 2
    record(db, job["id"], [(3, 0.9, True), (5, 0.5, True), (7, 0.7, True)])
    with db.cursor() as cur:  # stopped with episode 6 cut short
        cur.execute("UPDATE training_jobs SET status = 'stopped' WHERE id = %s", (job["id"],))
    new = client.get(f"{JOBS}/{job['id']}/metrics?after_iteration=2").get_json()
    assert new["iterations"] == [3, 4, 5, 7] and new["best_score"] == [0.9, 0.9, 0.9, 0.9]
    assert new["meta"]["complete_through"] == 5
    record(db, job["id"], [(6, 0.6, True), (8, 0.8, True)])  # the resume fills 6 first
    last = client.get(f"{JOBS}/{job['id']}/metrics?after_iteration=5").get_json()
    assert last["iterations"] == [6, 7, 8] and last["meta"]["complete_through"] == 8


def test_a_client_fetching_only_what_is_new_ends_with_the_whole_series(client, candles_of, start_worker):
    candles_of("LONG", 100_000)
    body = job_body(symbol="LONG", optimizer="random", n_iterations=40, n_jobs=2, seed=3,
                    param_space={"fast": {"low": 5, "high": 50}, "slow": {"low": 60, "high": 200}})
    job = client.post(JOBS, json=body).get_json()
    start_worker()
    through, iterations, fetched = None, [], 0

    def caught_up() -> bool:
        nonlocal through, iterations, fetched
        status = client.get(f"{JOBS}/{job['id']}").get_json()["status"]  # before the page: it may end meanwhile
        query = "" if through is None else f"?after_iteration={through}"
        page = client.get(f"{JOBS}/{job['id']}/metrics{query}").get_json()
        fetched += len(page["iterations"])
        iterations = [i for i in iterations if through is None or i <= through] + page["iterations"]
        through = page["meta"]["complete_through"]
        return status not in ("queued", "running")

    wait_for(caught_up, 90, every=0.05)
    whole = client.get(f"{JOBS}/{job['id']}/metrics").get_json()
    assert len(whole["iterations"]) == 40 and iterations == whole["iterations"]
    assert fetched < 3 * 40  # re-sent only past the first missing iteration, not the whole series each time
