"""The dashboard in a real browser: start, watch, stop, field errors, reconnect, token."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.browser.conftest import screenshot, unique
from tests.conftest import WebProcess

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
pytestmark = pytest.mark.slow

CANDLE_LINE = re.compile(r"^Processing candle [\d,]+/[\d,]+ \(\d+\.\d %\) – (signals|trades)$")
NETWORK_DOWN = r"net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING)"


def open_dashboard(page, web, path: str = "/") -> None:
    page.goto(web.url + path)
    expect(page.locator("#live .live")).to_have_attribute("data-state", "live")


def card_of(page, job_id: int):
    return page.locator(f'.job-card[data-job-id="{job_id}"]')


def card_named(page, name: str):
    return page.locator(".job-card", has=page.get_by_role("link", name=name, exact=True))


def wait_for_status(api, job_id: int, statuses: tuple[str, ...], timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        row = api.job(job_id)
        if row["status"] in statuses:
            return row
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is still {row['status']}")


def long_job(api, name: str, symbol: str = "BIG") -> dict:
    """A job whose backtests run on `symbol`'s candles, with more iterations than a test waits for."""
    return api.create_job(job_name=name, strategy="rsi_reversion", symbol=symbol, timeframe="5m",
                          optimizer="random", n_iterations=10_000, validation={"enabled": False})


def test_a_job_started_from_the_form_moves_its_bar_to_100(page, web, workers, candles_of):
    # Backtests of 300k candles last ~20 ms, so the search spans many progress writes.
    candles_of("BIG", 300_000)
    open_dashboard(page, web)
    name = unique("form job")
    form = page.locator("form.job-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Strategy").select_option("sma_crossover")
    form.get_by_label("Symbol").select_option("BIG")
    form.get_by_label("Optimizer").select_option("random")
    form.get_by_label("Iterations").fill("150")
    form.get_by_label("Seed").fill("7")
    form.get_by_label("Train days").fill("20")
    form.get_by_label("Test days").fill("7")
    form.get_by_role("button", name="Start training").click()
    expect(form.locator(".form-done")).to_contain_text("queued")

    card = card_named(page, name)
    bar = card.get_by_role("progressbar")
    seen: list[float] = []
    end = time.monotonic() + 90
    while time.monotonic() < end:
        value = float(bar.get_attribute("aria-valuenow"))
        if not seen or value != seen[-1]:
            seen.append(value)
        if card.get_attribute("data-status") in ("succeeded", "failed", "stopped"):
            break
        time.sleep(0.05)
    expect(card.locator(".badge")).to_have_text("succeeded")
    expect(card.locator(".bar-value")).to_have_text("100.0 %")
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert len([v for v in seen if 0 < v < 100]) >= 2, f"the bar did not move on its way to 100: {seen}"
    assert float(bar.get_attribute("aria-valuenow")) == 100.0
    screenshot(page, "list-1280")

    card.get_by_role("link", name=name).click()
    detail = page.locator(".job-detail")
    expect(detail.get_by_role("heading", name=name)).to_be_visible()
    expect(detail.locator(".step-done")).to_have_count(4)
    expect(detail.locator(".chart svg .dot").first).to_be_visible()
    expect(detail.locator(".chart .best-line")).to_have_count(1)
    expect(detail.locator(".folds tbody tr").first).to_be_visible()
    expect(detail.locator(".log-lines")).to_contain_text("training succeeded")
    screenshot(page, "detail-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    screenshot(page, "detail-390")
    page.get_by_role("link", name="← All jobs").click()
    expect(card).to_be_visible()
    screenshot(page, "list-390")


def test_the_candle_line_changes_while_backtests_run(page, web, workers, api, candles_of):
    # Backtests must outlast the optimizer's 0.1 s report throttle for the line to move inside
    # one: ~150 ms each on 2,000,000 candles on a fast machine (a shorter one shows its end).
    candles_of("HUGE", 2_000_000)
    job = long_job(api, unique("candles"), symbol="HUGE")
    try:
        open_dashboard(page, web)
        line = card_of(page, job["id"]).locator(".card-candles")
        seen: list[str] = []
        end = time.monotonic() + 60
        inside_a_backtest = []
        while len(inside_a_backtest) < 3 and time.monotonic() < end:
            text = line.text_content() if line.is_visible() else ""
            if text and (not seen or text != seen[-1]):
                assert CANDLE_LINE.match(text), text
                seen.append(text)
                if "(100.0 %)" not in text:
                    inside_a_backtest.append(text)
            time.sleep(0.02)
        assert len(inside_a_backtest) >= 3, f"the candle line did not move inside backtests: {seen}"
        assert all("/4,000,000 " in text for text in seen), seen
        screenshot(page, "candle-line")
    finally:
        api.stop(job["id"])
        wait_for_status(api, job["id"], ("stopped", "failed", "succeeded"))


def test_a_running_job_is_stopped_from_its_detail_page(page, web, workers, api, candles_of):
    candles_of("BIG", 300_000)
    job = long_job(api, unique("to stop"))
    try:
        open_dashboard(page, web, f"/#/jobs/{job['id']}")
        detail = page.locator(".job-detail")
        expect(detail.locator(".detail-heading .badge")).to_have_text("running", timeout=30_000)
        expect(detail.locator(".step-current")).to_contain_text("Optimization")
        detail.get_by_role("button", name="Stop").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Stop this job?")
        dialog.get_by_role("button", name="Stop job").click()
        expect(detail.locator(".detail-heading .badge")).to_have_text("stopped", timeout=15_000)
        expect(detail.locator(".step-stopped")).to_contain_text("Optimization")
        expect(detail.get_by_role("button", name="Resume")).to_be_enabled()
        expect(detail.get_by_role("button", name="Stop")).to_be_disabled()
        expect(detail.locator(".log-lines")).to_contain_text("training stopped")
        screenshot(page, "stopped-detail")
    finally:
        api.stop(job["id"])
        wait_for_status(api, job["id"], ("stopped", "failed", "succeeded"))


def test_bad_form_values_show_the_api_errors_under_their_fields(page, web, candles_of):
    candles_of("SYN", 20_000)
    open_dashboard(page, web)
    form = page.locator("form.job-form")
    form.get_by_label("Strategy").select_option("sma_crossover")
    form.get_by_label("Iterations").fill("0")
    form.get_by_text("Parameter space").click()
    fast = form.locator('fieldset[data-field="param_space.fast"]')
    fast.get_by_label("low").fill("45")
    fast.get_by_label("high").fill("10")
    with page.console_errors.expect(r"status of 422"):
        form.get_by_role("button", name="Start training").click()
        iterations_error = form.locator("#job-n_iterations-error")
        expect(iterations_error).to_be_visible()
        expect(iterations_error).to_contain_text("greater than or equal to 1")
        expect(form.get_by_label("Iterations")).to_have_attribute("aria-invalid", "true")
        expect(fast.locator(":scope > .field-error")).to_contain_text("low must be <= high")
        expect(form.locator(".form-errors")).to_contain_text("Correct the marked fields")
    screenshot(page, "field-errors")

    form.get_by_label("Iterations").fill("5")
    fast.get_by_label("low").fill("5")
    fast.get_by_label("high").fill("50")
    form.get_by_label("Symbol").select_option("SYN")
    form.get_by_label("Timeframe").select_option("1h")
    with page.console_errors.expect(r"status of 422"):
        form.get_by_role("button", name="Start training").click()
        expect(form.locator("#job-symbol-error")).to_contain_text("no 1h candles of SYN")
        expect(iterations_error).to_be_hidden()


def kill(web) -> None:
    """Kill the web server outright, as a crash would."""
    os.killpg(web.process.pid, signal.SIGKILL)
    web.process.wait(timeout=10)
    web._log.close()


def test_the_page_reconnects_by_itself_after_the_web_server_restarts(page, web, make_job, db):
    job = make_job(job_name=unique("before restart"), status="stopped")
    open_dashboard(page, web)
    card = card_of(page, job["id"])
    expect(card).to_be_visible()
    page.evaluate("window.loadedOnce = true")
    live = page.locator("#live .live")

    def rename(name: str) -> None:
        with db.cursor() as cur:
            cur.execute("UPDATE training_jobs SET job_name = %s WHERE id = %s", (name, job["id"]))

    with page.console_errors.expect(NETWORK_DOWN):
        kill(web)
        expect(live).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        expect(live).to_have_text("Reconnecting…")
        screenshot(page, "reconnecting")
        rename("renamed while the server was down")
        web.start()
        expect(live).to_have_attribute("data-state", "live", timeout=15_000)
    expect(card.get_by_role("link")).to_have_text("renamed while the server was down")
    rename("renamed after the restart")
    expect(card.get_by_role("link")).to_have_text("renamed after the restart", timeout=5_000)
    expect(page.locator("form.job-form")).to_be_visible()
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"


def test_a_protected_server_asks_for_the_token_once_and_remembers_it(page, env, web):
    protected = WebProcess({**env, "TRAD_API_TOKEN": "browser-secret"})
    try:
        with page.console_errors.expect(r"status of 401"):
            page.goto(protected.url)
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("requires an access token")
            expect(page.locator("#live .live")).to_have_text("Token needed")
            screenshot(page, "token-prompt")
            dialog.get_by_label("Token").fill("browser-secret")
            dialog.get_by_role("button", name="Save token").click()
            expect(page.locator("#live .live")).to_have_attribute("data-state", "live")
        expect(dialog).to_be_hidden()
        expect(page.locator(".list-summary")).to_have_text(re.compile(r"^\d+ jobs?$"))
        page.reload()
        expect(page.locator("#live .live")).to_have_attribute("data-state", "live")
        expect(page.get_by_role("dialog")).to_be_hidden()
        expect(page.locator("form.job-form").get_by_label("Strategy")).to_be_visible()
        with page.expect_navigation():
            page.get_by_role("link", name="RQ dashboard").click()
        expect(page.locator("body")).to_contain_text("Queues")  # rq-dashboard, let in by the page's cookie
        page.go_back()
        with page.console_errors.expect(r"status of 401"):
            page.locator(".token-menu summary").click()
            page.get_by_role("button", name="Forget token").click()
            expect(page.get_by_role("dialog")).to_contain_text("requires an access token")
            response = page.goto(f"{protected.url}/rq")
            assert response.status == 401, "the cookie went with the token"
    finally:
        page.goto("about:blank")  # close the stream before its server goes
        kill(protected)


def test_numbers_and_progress_lines_read_as_people_write_them(page, web):
    page.goto(web.url)
    shown = page.evaluate("""async () => {
        const status = await import("/static/job-status.js");
        const format = await import("/static/format.js");
        const row = {status: "running", candles_processed: 12345, total_candles: 20000, backtest_stage: "trades",
                     current_episode: 12, total_episodes: 1500, step_number: 2, total_steps: 4,
                     current_stage: "Optimization", step_percentage: 61.74};
        return [status.candleLine(row), status.episodeLine(row), status.stepLine(row),
                status.candleLine({...row, status: "succeeded"}), format.formatDuration(200),
                format.formatDuration(7500), format.formatScore(1234.5678), format.formatScore(-0.71014),
                format.formatParams({fast: 10, ratio: 0.15, mode: "long"})];
    }""")
    assert shown == ["Processing candle 12,345/20,000 (61.7 %) – trades", "Episode 12/1,500",
                     "Step 2/4: Optimization (61.7 %)", "", "3 min 20 s", "2 h 05 min", "1,234.57", "-0.7101",
                     "fast 10 · ratio 0.15 · mode long"]
