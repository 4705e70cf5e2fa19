"""Paging in two styles — `page`/`page_size` and `limit`/`offset`, never both — on every paged
route, and an unknown query parameter refused by name on every API route."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.api.support import JOBS, assert_error
from trad.store.logs import insert_logs
from trad.store.metrics import insert_metrics

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def seven_jobs(client, make_job) -> list[int]:
    return [make_job(job_name=f"job {i}")["id"] for i in range(7)]


def test_jobs_page_by_limit_and_offset(client, seven_jobs):
    newest_first = seven_jobs[::-1]
    page = client.get(f"{JOBS}?limit=3&offset=2").get_json()
    assert [j["id"] for j in page["items"]] == newest_first[2:5]
    assert page["meta"] == {"page": 1, "page_size": 3, "total": 7, "total_pages": 3, "offset": 2, "limit": 3}
    assert [j["id"] for j in client.get(f"{JOBS}?limit=50&offset=0").get_json()["items"]] == newest_first
    assert [j["id"] for j in client.get(f"{JOBS}?offset=6").get_json()["items"]] == newest_first[6:]
    assert client.get(f"{JOBS}?limit=3&offset=3").get_json()["meta"]["page"] == 2
    same = client.get(f"{JOBS}?page=2&page_size=3").get_json()
    assert [j["id"] for j in same["items"]] == newest_first[3:6] and same["meta"]["offset"] == 3
    assert client.get(f"{JOBS}?status=queued&limit=2").get_json()["meta"]["total"] == 7


def test_logs_page_by_limit_and_offset(client, db, make_job):
    job = make_job()
    with db.transaction() as conn:
        insert_logs(conn, job["id"], [(T0 + timedelta(seconds=i), "INFO", f"line {i}") for i in range(250)])
    page = client.get(f"{JOBS}/{job['id']}/logs?limit=2&offset=240").get_json()
    assert [line["message"] for line in page["logs"]] == ["line 240", "line 241"]
    assert page["meta"] == {"page": 121, "page_size": 2, "total": 250, "total_pages": 125, "offset": 240, "limit": 2}
    assert len(client.get(f"{JOBS}/{job['id']}/logs?offset=10").get_json()["logs"]) == 100  # the default size


def test_metrics_page_from_the_newest_in_either_style(client, db, make_job):
    job = make_job()
    with db.transaction() as conn:
        insert_metrics(conn, job["id"], [{"iteration": i, "score": i / 10, "valid": True, "params": {}, "metrics": {},
                                          "duration_ms": 1.0} for i in range(1, 4001)])
    url = f"{JOBS}/{job['id']}/metrics"
    latest = client.get(f"{url}?limit=100").get_json()
    assert latest["iterations"] == list(range(3901, 4001)) and latest["meta"]["total"] == 4000
    assert client.get(f"{url}?page_size=100").get_json()["iterations"] == latest["iterations"]
    assert client.get(f"{url}?page=2&page_size=100").get_json()["iterations"] == list(range(3801, 3901))
    assert client.get(f"{url}?limit=5").get_json()["iterations"] == [3996, 3997, 3998, 3999, 4000]


@pytest.mark.parametrize("path", ["", "/{id}/logs", "/{id}/metrics"])
@pytest.mark.parametrize("query, named", [("page=1&limit=5", "limit"), ("page_size=5&offset=0", "offset"),
                                          ("page=2&page_size=5&limit=5&offset=5", "limit")])
def test_both_paging_styles_at_once_is_a_422(client, make_job, path, query, named):
    job = make_job()
    error = assert_error(client.get(f"{JOBS}{path.format(id=job['id'])}?{query}"), 422, "VALIDATION_ERROR", named)
    assert "not both" in error["message"]


def api_urls(app, job_id: int) -> list[tuple[str, str]]:
    """(method, URL) of every API route, with a job id in every id (the check comes before any lookup)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                urls.append((method, re.sub(r"<(?:int:)?\w+>", str(job_id), rule.rule)))
    return urls


def test_an_unknown_query_parameter_is_refused_by_name_on_every_api_route(app, client, make_job, db):
    job = make_job()
    urls = api_urls(app, job["id"])
    assert len(urls) >= 17 and ("GET", f"{JOBS}/stream") in urls and ("GET", "/api/v1/training/status") in urls
    for method, url in urls:
        response = client.open(f"{url}?colour=red&page_sise=5", method=method)
        error = assert_error(response, 422, "VALIDATION_ERROR", "colour")
        assert [d["field"] for d in error["details"]] == ["colour", "page_sise"], (method, url)
        assert "colour" in error["message"] and "this route takes" in error["message"]
    with db.cursor() as cur:
        cur.execute("SELECT status FROM training_jobs WHERE id = %s", (job["id"],))
        assert cur.fetchone()["status"] == "queued"  # the refused stop and delete changed nothing


def test_documented_parameters_and_the_token_pass(client, make_job):
    job = make_job()
    assert client.get(f"{JOBS}?token=x&status=queued&page=1&page_size=5").status_code == 200
    assert client.get(f"{JOBS}/{job['id']}?token=x").status_code == 200
    assert client.get(f"{JOBS}/{job['id']}/metrics?after_iteration=0&limit=10").status_code == 200
    stream = client.get(f"{JOBS}/{job['id']}/stream?last_event_id=0&token=x", buffered=False)
    assert stream.status_code == 200
    stream.close()
    assert_error(client.get(f"{JOBS}/{job['id']}/stream?status=queued"), 422, "VALIDATION_ERROR", "status")
