"""The batch panel's two ways to cancel, and the API documentation pages (ReDoc, Swagger UI)
rendered from this server alone, in a real browser."""

from __future__ import annotations

import re

import pytest
import requests

from tests.browser.conftest import screenshot

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
pytestmark = pytest.mark.slow


def test_the_batch_panel_cancels_after_the_current_jobs_then_now(page, web, db, candles_of):
    for seed, symbol in enumerate(("PAA", "PBB", "PCC"), start=1):
        candles_of(symbol, 300, seed=seed)
    template = {"strategy": "sma_crossover", "optimizer": "random", "n_iterations": 5, "validation": {"enabled": False}}
    batch = requests.post(f"{web.url}/api/v1/training/train-all", timeout=10,
                          json={"symbols": ["PAA", "PBB", "PCC"], "template": template}).json()
    running = batch["jobs"][0]["job_id"]  # no worker runs here: this job is marked running by hand
    with db.cursor() as cur:
        cur.execute("UPDATE training_jobs SET status = 'running', started_at = now() WHERE id = %s", (running,))

    page.goto(web.url)
    panel = page.locator("#batch-panel")
    expect(panel.locator(".batch-status")).to_have_text(re.compile(r"^Training: 0/3 symbols"))
    after, now = panel.get_by_role("button", name="Cancel after current"), panel.get_by_role("button", name="Cancel batch now")
    after.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("The running jobs finish")
    dialog.get_by_role("button", name="Cancel after current").click()
    expect(panel.locator(".batch-status")).to_have_text(re.compile(r"^Cancelling after the current jobs: 2/3 symbols"))
    expect(panel.locator(".batch-counts")).to_contain_text("Stopped 2")
    expect(after).to_be_disabled()
    expect(now).to_be_enabled()
    screenshot(page, "batch-cancelling-after-current")

    now.click()
    dialog.get_by_role("button", name="Cancel now").click()
    expect(now).to_be_disabled()
    assert requests.get(f"{web.url}/api/v1/training-jobs/{running}", timeout=10).json()["cancel_requested"] is True
    with db.cursor() as cur:  # what the worker would write on seeing the stop
        cur.execute("UPDATE training_jobs SET status = 'stopped', finished_at = now() WHERE id = %s", (running,))
    expect(panel.locator(".batch-status")).to_have_text(re.compile(r"^Cancelled: "), timeout=20_000)
    expect(panel.locator(".batch-counts")).to_contain_text("Stopped 3")


def test_redoc_and_swagger_ui_render_the_spec_from_this_server_alone(page, web):
    elsewhere = []

    def only_this_server(route) -> None:
        if route.request.url.startswith((web.url, "data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    # ReDoc 2.5 shows its vendor's logo from a CDN: the page's Content-Security-Policy refuses it.
    with page.console_errors.expect(r"image 'https://cdn\.redoc\.ly/.*Content Security Policy"):
        page.goto(f"{web.url}/redoc")
        expect(page.locator("h1")).to_contain_text("trad")
        expect(page.locator("h2", has_text="Workers (state, the job each runs, last heartbeat)")).to_be_visible()
    page.goto(f"{web.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("trad")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/training/status")).to_be_visible()
    assert elsewhere == []
