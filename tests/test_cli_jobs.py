"""The job commands of `trad`: train, jobs, stop, cleanup, watch (under a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

from trad.store.configs import insert_configuration
from trad.store.jobs import get_job


def trad(env, *args, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "trad", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_train_from_flags_and_a_file(env, clean_db, candles_of, tmp_path):
    candles_of("SYN", 20_000)
    made = trad(env, "train", "--strategy", "sma_crossover", "--symbol", "SYN", "--timeframe", "5m",
                "--optimizer", "grid", "--param", "fast=5:20:5", "--param", "slow=50,100", "--no-validation")
    assert made.returncode == 0, made.stderr
    job_id = int(made.stdout.strip())
    with clean_db.connection() as conn:
        row = get_job(conn, job_id)
    assert row["status"] == "queued"
    assert row["config"]["param_space"] == {"fast": {"low": 5, "high": 20, "step": 5}, "slow": {"choices": [50, 100]}}
    request = tmp_path / "job.json"
    request.write_text(json.dumps({"strategy": "rsi_reversion", "symbol": "SYN", "timeframe": "5m",
                                   "optimizer": "random", "n_iterations": 7}))
    from_file = trad(env, "train", "--file", str(request), "--seed", "3")
    assert from_file.returncode == 0, from_file.stderr
    listing = trad(env, "jobs").stdout
    assert "rsi_reversion SYN 5m random" in listing and "2 of 2 jobs" in listing
    assert trad(env, "stop", str(job_id)).stdout.strip() == f"job {job_id}: stopped"


def test_bad_job_flags_exit_2_with_one_line(env, clean_db, candles_of):
    candles_of("SYN", 20_000)
    for args, words in [(("--strategy", "nope"), "unknown strategy 'nope'"),
                        (("--iterations", "0"), "n_iterations"),
                        (("--param", "fast"), "NAME=VALUE"),
                        (("--param", "fast=1:500"), "param_space.fast")]:
        result = trad(env, "train", "--strategy", "sma_crossover", "--symbol", "SYN", "--timeframe", "5m",
                      "--optimizer", "random", *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_train_defaults_to_bayesian_and_names_every_missing_field_at_once(env, clean_db, candles_of):
    candles_of("SYN", 20_000)
    missing = trad(env, "train", "--iterations", "0")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    for words in ("strategy (--strategy): missing", "symbol (--symbol): missing", "timeframe (--timeframe): missing",
                  "n_iterations (--iterations): Input should be greater than or equal to 1"):
        assert words in missing.stderr, missing.stderr
    assert "optimizer" not in missing.stderr
    made = trad(env, "train", "--strategy", "sma_crossover", "--symbol", "SYN", "--timeframe", "5m")
    assert made.returncode == 0, made.stderr
    with clean_db.connection() as conn:
        assert get_job(conn, int(made.stdout))["optimizer"] == "bayesian"


def test_a_bad_job_file_is_one_line_and_exit_2(env, tmp_path):
    request = '{"strategy": "sma_crossover", "symbol": "SYN", "timeframe": "5m", "job_name": %s}'
    files = {"nul-escape.json": (request % '"a\\u0000b"').encode(), "nul-byte.json": b'{"job_name": "a\x00"}',
             "deep.json": b"[" * 1000 + b"]" * 1000, "deeper.json": (request % ("[" * 5000 + "]" * 5000)).encode(),
             "latin-1.json": (request % '"caf\xe9"').encode("latin-1"), "list.json": b"[1, 2]"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        result = trad(env, "train", "--file", str(tmp_path / name))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (name, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, (name, result.stderr)
    assert "NUL" in trad(env, "train", "--file", str(tmp_path / "nul-escape.json")).stderr


def test_cleanup_deletes_exactly_the_old_finished_jobs(env, clean_db, make_job):
    old_done = [make_job(job_name=f"old {s}", status=s) for s in ("succeeded", "failed", "stopped")]
    old_running = make_job(job_name="old running", status="running")
    recent_done = make_job(job_name="recent", status="succeeded")
    with clean_db.transaction() as conn:
        kept = insert_configuration(conn, strategy="sma_crossover", symbol="SYN", timeframe="5m",
                                    params={"fast": 5, "slow": 50}, objective="sharpe", score=1.0, metrics={},
                                    validation=None, training_job_id=old_done[0]["id"], data_start=None,
                                    data_end=None)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO training_logs (job_id, message) VALUES (%s, 'a line')", (old_done[1]["id"],))
            cur.execute("UPDATE training_jobs SET created_at = now() - interval '31 days' WHERE id = ANY(%s)",
                        ([j["id"] for j in old_done] + [old_running["id"]],))
    result = trad({**env, "TRAD_RETENTION_DAYS": "30"}, "cleanup")
    assert result.returncode == 0 and "deleted 3 jobs" in result.stdout
    with clean_db.cursor() as cur:
        cur.execute("SELECT id FROM training_jobs ORDER BY id")
        assert [r["id"] for r in cur.fetchall()] == [old_running["id"], recent_done["id"]]
        cur.execute("SELECT count(*) AS n FROM training_logs")
        assert cur.fetchone()["n"] == 0
        cur.execute("SELECT training_job_id FROM trained_configurations WHERE id = %s", (kept["id"],))
        assert cur.fetchone()["training_job_id"] is None  # the configuration stays


def run_in_terminal(argv: list[str], env: dict, timeout: float) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout; returns (exit code, everything it drew)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, env={**env, "TERM": "xterm-256color", "COLUMNS": "100"},
                               stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    drawn, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=10), drawn.decode("utf-8", "replace")


def test_watch_draws_a_moving_bar_and_exits_with_the_status(env, db, settings, candles_of, start_worker,
                                                            start_web, clean_db):
    candles_of("BIG", 300_000)
    web = start_web()
    made = trad(env, "train", "--strategy", "rsi_reversion", "--symbol", "BIG", "--timeframe", "5m",
                "--optimizer", "random", "--iterations", "60", "--seed", "2", "--no-validation")
    job_id = int(made.stdout.strip())
    start_worker()
    code, drawn = run_in_terminal([sys.executable, "-m", "trad", "watch", str(job_id), "--url", web.url],
                                  env, timeout=120)
    assert code == 0, drawn[-2000:]
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)
    assert "━" in plain  # rich's bar
    job_bar = [int(p) for p in re.findall(rf"job {job_id} \w+ +━*╸?━* +(\d+)%", plain)]
    assert len(set(job_bar)) >= 3 and job_bar == sorted(job_bar) and job_bar[-1] == 100, job_bar
    assert f"job {job_id} succeeded" in plain


def test_watch_exit_code_of_a_stopped_job(env, clean_db, make_job, start_web, db):
    job = make_job()
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = 'stopped' WHERE id = %s", (job["id"],))
    web = start_web()
    result = trad(env, "watch", str(job["id"]), "--url", web.url)
    assert result.returncode == 3


def start_two_symbol_batch(env, candles_of):
    """`trad train-all` over AAA and BBB (no worker runs: both jobs stay queued)."""
    candles_of("AAA", 2_000)
    candles_of("BBB", 2_000)
    started = trad(env, "train-all", "--strategy", "sma_crossover", "--timeframe", "5m", "--optimizer", "random",
                   "--iterations", "5", "--no-validation")
    assert started.returncode == 0, started.stderr
    return started


def test_train_all_then_cancel(env, clean_db, candles_of):
    started = start_two_symbol_batch(env, candles_of)
    assert "AAA" in started.stdout and "BBB" in started.stdout and "2 jobs queued" in started.stdout
    again = trad(env, "train-all", "--timeframe", "5m")
    assert again.returncode == 1 and "still running" in again.stderr, again.stderr
    cancelled = trad(env, "cancel")
    assert cancelled.returncode == 0 and "asked 2 jobs to stop" in cancelled.stdout
    with clean_db.cursor() as cur:
        cur.execute("SELECT status FROM training_jobs ORDER BY id")
        assert [r["status"] for r in cur.fetchall()] == ["stopped", "stopped"]
    assert trad(env, "cancel").returncode == 1


def test_cancel_after_current_stops_only_what_has_not_started(env, clean_db, candles_of):
    start_two_symbol_batch(env, candles_of)
    with clean_db.cursor() as cur:  # as if a worker had started the first job
        cur.execute("UPDATE training_jobs SET status = 'running' WHERE id = (SELECT min(id) FROM training_jobs)")
    cancelled = trad(env, "cancel", "--after-current")
    assert cancelled.returncode == 0 and "stopped 1 queued jobs; 1 running jobs finish first" in cancelled.stdout
    with clean_db.cursor() as cur:
        cur.execute("SELECT status, cancel_requested FROM training_jobs ORDER BY id")
        assert [tuple(r.values()) for r in cur.fetchall()] == [("running", False), ("stopped", True)]


def test_results_print_the_winners_metrics_and_trades_and_write_them_as_csv(env, clean_db, settings, make_job,
                                                                            candles_of, tmp_path):
    from trad.jobs.runner import run_training

    candles_of("SYN", 20_000)
    job = make_job(config={"param_space": {"fast": {"choices": [5, 10]}, "slow": {"choices": [50]}}, "min_trades": 1,
                           "validation": {"train_window_days": 20, "test_window_days": 10}})
    final = run_training(job["id"], settings)
    csv_file = tmp_path / "trades.csv"
    shown = trad(env, "results", str(job["id"]), "--trades-csv", str(csv_file))
    assert shown.returncode == 0, shown.stderr
    trades = final["result"]["best_metrics"]["n_trades"]
    assert f"parameters  fast={final['best_params']['fast']} slow=50" in shown.stdout
    assert re.search(rf"^trades +{trades}$", shown.stdout, re.M) and f"trade list  {trades}: won" in shown.stdout
    assert re.search(r"^walk-forward  \d+ folds", shown.stdout, re.M)
    assert f"wrote {trades} trades to {csv_file}" in shown.stdout
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("number,entry_time,exit_time") and len(lines) == trades + 1
    missing = trad(env, "results", "999")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: training job 999 does not exist"
