"""The detail page's score chart in a real browser: after its first load it fetches only the
evaluations that are new, and still ends with every one of them."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.browser.conftest import unique
from tests.browser.test_dashboard import open_dashboard

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
pytestmark = pytest.mark.slow


def test_the_chart_fetches_only_new_evaluations_and_shows_them_all(page, web, workers, api, candles_of):
    candles_of("BIG", 300_000)
    job = api.create_job(job_name=unique("chart"), strategy="rsi_reversion", symbol="BIG", timeframe="5m",
                         optimizer="random", n_iterations=120, n_jobs=2, seed=5, min_trades=0,
                         validation={"enabled": False})
    asked: list[dict] = []
    page.on("request", lambda r: asked.append(parse_qs(urlsplit(r.url).query)) if "/metrics" in r.url else None)
    open_dashboard(page, web, f"/#/jobs/{job['id']}")
    detail = page.locator(".job-detail")
    expect(detail.locator(".detail-heading .badge")).to_have_text("succeeded", timeout=60_000)
    whole = requests.get(f"{web.url}/api/v1/training-jobs/{job['id']}/metrics", timeout=10).json()
    scored = sum(1 for s in whole["score"] if s is not None and math.isfinite(s))
    expect(detail.locator(".chart-plot svg")).to_have_attribute(
        "aria-label", f"{scored:,} scored iterations; best sharpe {whole['best_score'][-1]:.4f}", timeout=10_000)
    assert len(whole["iterations"]) == 120 and len(asked) >= 3, asked
    assert "after_iteration" not in asked[0] and all("after_iteration" in query for query in asked[1:]), asked
