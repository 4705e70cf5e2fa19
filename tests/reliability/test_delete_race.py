"""DELETE racing a job's end: a job that succeeds while it is being deleted is deleted all the same
(204, its rows gone), never answered `409 … already succeeded` and left behind.

The race is in the DELETE itself: it reads the job as running, then waits for the row lock that the
worker's final write holds (Save Configuration writes the trained configuration and the terminal
state in one transaction), and finds the job succeeded. A trigger stretches that final write by
0.3 s, as a slow disk would, so every DELETE sent during Save Configuration lands in the window.
"""

from __future__ import annotations

import requests

from tests.api.support import JOBS, job_body
from tests.polling import job_row, wait_for

SLOW_FINAL_WRITE = """
    CREATE OR REPLACE FUNCTION test_slow_final_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$;
    CREATE OR REPLACE TRIGGER test_slow_final_write BEFORE UPDATE ON training_jobs FOR EACH ROW
        WHEN (OLD.status = 'running' AND NEW.status = 'succeeded') EXECUTE FUNCTION test_slow_final_write();"""
JOBS_RACED = 4


def test_a_job_deleted_while_it_saves_its_configuration_is_deleted(start_web, start_worker, candles_of, db,
                                                                    clean_db):
    candles_of("SYN", 3_000)
    with db.cursor() as cur:
        cur.execute(SLOW_FINAL_WRITE)
    try:
        web = start_web()
        ids = [requests.post(f"{web.url}{JOBS}", json=job_body(job_name=f"race {i}"), timeout=10).json()["id"]
               for i in range(JOBS_RACED)]
        worker = start_worker()
        answers, raced = {}, 0
        for job_id in ids:  # one worker: they end one after the other
            row = wait_for(lambda: (r := job_row(db, job_id)) and (r["current_stage"] == "Save Configuration"
                                                                  or r["status"] not in ("queued", "running")) and r,
                           60, every=0.01, what=f"job {job_id} saving")
            raced += row["status"] == "running"
            answers[job_id] = requests.delete(f"{web.url}{JOBS}/{job_id}", timeout=10)
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS test_slow_final_write ON training_jobs; "
                        "DROP FUNCTION IF EXISTS test_slow_final_write();")
    assert {job_id: r.status_code for job_id, r in answers.items()} == {job_id: 204 for job_id in ids}, \
        [r.text for r in answers.values()]
    assert raced >= JOBS_RACED - 1, raced  # the DELETEs met the jobs while they were saving
    with db.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM training_jobs) AS jobs, (SELECT count(*) FROM training_metrics) "
                    "AS metrics, (SELECT count(*) FROM training_logs) AS logs")
        assert cur.fetchone() == {"jobs": 0, "metrics": 0, "logs": 0}
    assert worker.process.poll() is None, worker.output()  # the worker lives on
