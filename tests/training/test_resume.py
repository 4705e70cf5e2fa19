"""Resume: a stopped job, resumed, ends with exactly its budget of evaluations — seeded or not.

Real PostgreSQL, Redis and `trad worker` processes; stops and resumes go through
`trad.jobs.control`, as the API and the CLI send them.
"""

from __future__ import annotations

import pytest

from tests.conftest import STOPPABLE_CANDLES, STOPPABLE_SYMBOL
from tests.polling import job_row as row, wait_for
from trad.jobs.control import create_job, resume_job, stop_job
from trad.jobs.stop_flags import cancel_key
from trad.jobs.queue import connect_redis
from trad.jobs.requests import JobRequest
from trad.optimize import GridSearch, RandomSearch, build_search_space, evaluate_config
from trad.store.candles import load_frame
from trad.store.jobs import requeue, update_job
from trad.store.metrics import insert_metrics, job_metrics
from trad.strategies import get_strategy
from trad.jobs.runner import run_training

WIDE_SPACE = {"fast": {"low": 5, "high": 45, "step": 1}, "slow": {"low": 50, "high": 200, "step": 5}}  # 1,271


@pytest.fixture
def redis_client(settings):
    client = connect_redis(settings)
    yield client
    client.close()


def metrics_of(db, job_id: int) -> list[dict]:
    with db.connection() as conn:
        return job_metrics(conn, job_id)


def configuration(params: dict) -> tuple:
    return tuple(sorted(params.items()))


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, n_iterations, n_jobs, stop_after", [
    ("random", 1000, 2, 100),
    ("bayesian", 300, 1, 40),
    ("grid", None, 2, 100),
])
def test_an_unseeded_search_stopped_and_resumed_runs_exactly_its_budget(
        db, settings, redis_client, candles_of, start_worker, job_audit, optimizer, n_iterations, n_jobs,
        stop_after, record_property):
    """The search draws its seed as it first starts and keeps it; the resume replays the same
    sequence, skips what is recorded and fills the episodes a stop cut short. The stop flag
    of the first run is still in Redis when the second starts: it does not stop it."""
    candles_of(STOPPABLE_SYMBOL, STOPPABLE_CANDLES)
    request = JobRequest(strategy="sma_crossover", symbol=STOPPABLE_SYMBOL, timeframe="5m", optimizer=optimizer,
                         param_space=WIDE_SPACE, n_iterations=n_iterations or 50, n_jobs=n_jobs,
                         min_trades=1, validation={"enabled": False})
    job = create_job(db, redis_client, settings, request)
    worker = start_worker()
    wait_for(lambda: row(db, job["id"])["current_episode"] >= stop_after, 120, what="episodes before the stop")
    stop_job(db, redis_client, settings, job["id"])
    stopped = wait_for(lambda: (r := row(db, job["id"]))["status"] != "running" and r, 30)
    before = metrics_of(db, job["id"])
    assert stopped["status"] == "stopped", worker.output()
    assert stop_after <= len(before) < stopped["total_episodes"]
    assert stopped["config"]["seed"] is None and isinstance(stopped["result"]["seed"], int)
    assert redis_client.exists(cancel_key(settings.redis_prefix, stopped["rq_job_id"]))

    resume_job(db, redis_client, settings, job["id"])
    final = wait_for(lambda: (r := row(db, job["id"]))["status"] in ("succeeded", "failed", "stopped") and r,
                     180, what="the resumed job's end")
    assert final["status"] == "succeeded", worker.output()
    budget = final["total_episodes"]
    assert budget == (n_iterations or 41 * 31)
    recorded = metrics_of(db, job["id"])
    assert [m["iteration"] for m in recorded] == list(range(1, budget + 1))
    assert len({configuration(m["params"]) for m in recorded}) == budget
    by_iteration = {m["iteration"]: m for m in recorded}
    assert all(by_iteration[m["iteration"]]["params"] == m["params"] for m in before)  # none computed again
    assert final["current_episode"] == budget and final["result"]["evaluations"] == budget
    assert final["result"]["seed"] == stopped["result"]["seed"] and final["attempts"] == 2
    episodes = [r["current_episode"] for r in job_audit(job["id"])]
    assert episodes == sorted(episodes), "current_episode fell on some update of the row"
    record_property("figure", f"{optimizer}: stopped at {len(before)} of {budget}, resumed to {len(recorded)}; "
          f"{len(episodes)} row updates, current_episode never fell")


def _record(db, job_id: int, evaluations: list[tuple[int, dict]]) -> None:
    """Store real evaluations of `params` under the given iterations, as a stopped run leaves them."""
    data = load_frame(db, "SYN", "5m")
    rows = []
    for iteration, params in evaluations:
        e = evaluate_config(data, "sma_crossover", params, {}, "sharpe", 1)
        rows.append({"iteration": iteration, "score": e.score, "valid": e.valid, "params": e.params,
                     "metrics": e.metrics, "duration_ms": e.duration_ms})
    with db.transaction() as conn:
        insert_metrics(conn, job_id, rows)


def _resume_directly(db, settings, job_id: int) -> dict:
    """What the resume endpoint does to the row, then the run itself in this process."""
    with db.transaction() as conn:
        update_job(conn, job_id, {"status": "stopped"})
        requeue(conn, job_id, f"trad-test-resume-{job_id}", ("stopped",))
    return run_training(job_id, settings, rq_job_id=f"trad-test-resume-{job_id}")


def test_a_resume_numbers_the_episodes_a_stop_cut_short_first(db, settings, make_job, candles_of):
    """With n_jobs > 1 a stop can end episode 4 unfinished after 5 and 6 were recorded."""
    candles_of("SYN", 20_000)
    space = {"fast": {"low": 5, "high": 15, "step": 5}, "slow": {"low": 50, "high": 100, "step": 10}}
    job = make_job(config={"param_space": space, "min_trades": 1, "validation": {"enabled": False}})
    grid = GridSearch(build_search_space(get_strategy("sma_crossover"), space)).configurations
    _record(db, job["id"], [(i, grid[i - 1]) for i in (1, 2, 3, 5, 6)])
    final = _resume_directly(db, settings, job["id"])
    recorded = metrics_of(db, job["id"])
    assert final["status"] == "succeeded" and final["current_episode"] == final["total_episodes"] == 18
    assert [m["iteration"] for m in recorded] == list(range(1, 19))
    assert [m["params"] for m in recorded] == grid  # episode 4 is the grid's fourth configuration


def test_a_job_stopped_before_it_kept_a_seed_resumes_within_its_budget(db, settings, make_job, candles_of):
    """Evaluations an unseeded run drew before seeds were kept are not in the new sequence:
    they still count, so the job ends with n_iterations evaluations, not more."""
    candles_of("SYN", 20_000)
    job = make_job(optimizer="random", config={"n_iterations": 30, "param_space": WIDE_SPACE, "min_trades": 1,
                                               "validation": {"enabled": False}})
    assert job["result"] is None
    space = build_search_space(get_strategy("sma_crossover"), WIDE_SPACE)
    earlier = RandomSearch(space, n_iterations=12, seed=777).configurations
    _record(db, job["id"], list(enumerate(earlier, start=1)))
    final = _resume_directly(db, settings, job["id"])
    recorded = metrics_of(db, job["id"])
    assert final["status"] == "succeeded" and final["current_episode"] == final["total_episodes"] == 30
    assert [m["iteration"] for m in recorded] == list(range(1, 31))
    assert [m["params"] for m in recorded[:12]] == earlier
    assert len({configuration(m["params"]) for m in recorded}) == 30
    assert isinstance(final["result"]["seed"], int)
