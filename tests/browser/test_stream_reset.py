"""The dashboard away for more changes than the server replays: told to reset, it reloads what it
shows by REST, without reloading the page."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot, unique
from tests.browser.test_dashboard import NETWORK_DOWN, card_of, kill, open_dashboard
from tests.job_history import insert_finished_jobs
from trad.api.history import REPLAY_JOBS

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
pytestmark = pytest.mark.slow


def test_the_page_reloads_what_it_shows_after_a_reset(page, web, make_job, db):
    renamed, deleted = make_job(job_name=unique("renamed"), status="stopped"), make_job(job_name=unique("deleted"))
    open_dashboard(page, web)
    expect(card_of(page, deleted["id"])).to_be_visible()
    page.evaluate("window.loadedOnce = true")
    with page.console_errors.expect(NETWORK_DOWN):
        kill(web)
        with db.transaction() as conn:  # more changes than the server keeps to replay
            insert_finished_jobs(conn, REPLAY_JOBS + 100)
            with conn.cursor() as cur:
                cur.execute("UPDATE training_jobs SET job_name = 'renamed while away' WHERE id = %s", (renamed["id"],))
                cur.execute("DELETE FROM training_jobs WHERE id = %s", (deleted["id"],))
                cur.execute("SELECT count(*) AS n FROM training_jobs")
                total = cur.fetchone()["n"]
        web.start()
        expect(page.locator("#live .live")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(card_of(page, renamed["id"]).get_by_role("link")).to_have_text("renamed while away")
    expect(card_of(page, deleted["id"])).to_have_count(0)
    expect(page.locator(".list-summary")).to_have_text(f"{total:,} jobs")
    screenshot(page, "after-reset")
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"
