"""A stream's rows, serialised by PostgreSQL, say exactly what the API says about them."""

import json
from datetime import datetime, timezone

from trad.api.events import RowText, job_event
from trad.store import json_safe
from trad.store.job_log import columns_of_type, logged_job
from trad.store.jobs import get_job


def test_rows_as_the_stream_sends_them_equal_the_apis_json(db, make_job, clean_db):
    exact_second = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    trailing_zero = datetime(2026, 5, 1, 12, 0, 0, 579430, tzinfo=timezone.utc)
    jobs = [make_job(job_name="plain"),
            make_job(job_name="ünïcode ✓ \"quoted\"\nline", started_at=exact_second, finished_at=trailing_zero,
                     current_score=float("nan"), best_score=float("inf"), current_loss=float("-inf"),
                     result={"created_at": "2026-05-01T12:00:00.57943+00:00", "n": 2.0, "deep": [{"x": None}]}),
            make_job(job_name="2026-05-01T12:00:00.57943+00:00", progress=37.7, eta_seconds=1e-7)]
    with db.connection() as conn:
        text = RowText(columns_of_type(conn, "double precision"), columns_of_type(conn, "timestamp with time zone"))
        for job in jobs:
            message = job_event(logged_job(conn, job["id"]), None, text).message.decode()
            data = message.split("data: ", 1)[1].rstrip("\n")
            api = json.loads(json.dumps(json_safe(get_job(conn, job["id"]))))
            assert json.loads(data) == api
            assert "\n" not in data
    assert api["job_name"] == "2026-05-01T12:00:00.57943+00:00"  # a name is not a timestamp
