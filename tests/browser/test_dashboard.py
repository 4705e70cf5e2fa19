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
# How the browser reports a request the killed server never answered, or cut mid-response.
NETWORK_DOWN = (r"net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING"
                r"|CONTENT_LENGTH_MISMATCH)")


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
    form.get_by_label("Episodes").fill("150")
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
        card = card_of(page, job["id"])
        assert line.evaluate("el => getComputedStyle(el).color") \
            == card.locator(".card-meta").evaluate("el => getComputedStyle(el).color"), "the candle line looks like a link"
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
    form.get_by_label("Episodes").fill("0")
    form.get_by_text("Parameter space").click()
    fast = form.locator('fieldset[data-field="param_space.fast"]')
    fast.get_by_label("low").fill("45")
    fast.get_by_label("high").fill("10")
    with page.console_errors.expect(r"status of 422"):
        form.get_by_role("button", name="Start training").click()
        iterations_error = form.locator("#job-n_iterations-error")
        expect(iterations_error).to_be_visible()
        expect(iterations_error).to_contain_text("greater than or equal to 1")
        expect(form.get_by_label("Episodes")).to_have_attribute("aria-invalid", "true")
        expect(fast.locator(":scope > .field-error")).to_contain_text("low must be <= high")
        expect(form.locator(".form-errors")).to_contain_text("Correct the marked fields")
    screenshot(page, "field-errors")

    form.get_by_label("Episodes").fill("5")
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


def test_the_form_proposes_windows_that_fit_the_chosen_candles(page, web, candles_of):
    candles_of("DAYS104", 30_000)  # 5-minute candles over 104 days
    candles_of("DAYS17", 5_000)
    open_dashboard(page, web)
    form = page.locator("form.job-form")
    windows = [form.get_by_label(label) for label in ("Train days", "Test days", "Gap days")]
    hint = form.locator("#job-windows-hint")

    form.get_by_label("Symbol").select_option("DAYS104")
    assert [w.input_value() for w in windows] == ["42", "14", "0"]
    expect(hint).to_have_text("4 folds over the 104 days of DAYS104 5m.")
    expect(form.locator("#job-data-hint")).to_contain_text("30,000 candles")
    form.get_by_label("Symbol").select_option("DAYS17")
    assert [w.input_value() for w in windows] == ["6", "2", "0"]
    expect(hint).to_have_text("5 folds over the 17 days of DAYS17 5m.")
    windows[0].fill("20")
    expect(hint).to_have_text("No fold fits in the 17 days of DAYS17 5m: the server will refuse these windows.")
    screenshot(page, "form-windows")


def fits(locator) -> bool:
    """Whether a control shows its whole text (a select's chosen option, an empty input's placeholder):
    the text's width in the control's font against its content box, less a select's arrow and the
    15 px of Chromium's spin buttons on a number input that has them."""
    return locator.evaluate("""el => {
        const style = getComputedStyle(el);
        const text = el.tagName === "SELECT" ? el.options[el.selectedIndex].text : el.value || el.placeholder;
        const context = document.createElement("canvas").getContext("2d");
        context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const spin = el.type === "number" && style.appearance !== "textfield" ? 15 : 0;
        const arrow = el.tagName === "SELECT" ? 24 : 0;
        const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - arrow - spin;
        return context.measureText(text).width <= room;
    }""")


@pytest.mark.parametrize("width", [1280, 390])
def test_cards_keep_long_titles_on_one_line_and_form_fields_fit(page, web, make_job, candles_of, width):
    candles_of("DAYS104", 30_000)
    name = unique("a long title: liquidity_sweep on DAYS104 5m with Bayesian search and walk-forward validation")
    make_job(job_name=name, symbol="DAYS104", status="succeeded")
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, web)
    title = card_named(page, name).locator(".card-title")
    line_height = title.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert title.bounding_box()["height"] < 1.5 * line_height, "the title wraps"
    expect(title.get_by_role("link")).to_have_attribute("title", name)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    form = page.locator("form.job-form")
    form.get_by_label("Symbol").select_option("DAYS104")
    assert fits(form.get_by_label("Symbol")), "the symbol is cut off"
    assert fits(form.get_by_label("Seed")), "the seed's placeholder is cut off"
    screenshot(page, f"cards-and-form-{width}")


def test_a_skipped_or_disabled_validation_is_never_shown_as_done(page, web, settings, make_job, candles_of):
    from trad.jobs.runner import run_training

    candles_of("SYN", 20_000)  # 69 days; a request is refused such windows, a job stored with them skips validation
    space = {"fast": {"choices": [5, 10]}, "slow": {"choices": [50]}}
    stored = make_job(job_name=unique("skips validation"), config={
        "param_space": space, "min_trades": 0, "validation": {"train_window_days": 90, "test_window_days": 30}})
    assert run_training(stored["id"], settings)["status"] == "succeeded"
    open_dashboard(page, web, f"/#/jobs/{stored['id']}")
    steps = page.locator(".job-detail .steps")
    skipped = steps.locator(".step-skipped")
    expect(skipped).to_contain_text("Validation")
    expect(skipped.locator(".step-state")).to_have_text("skipped")
    expect(skipped.locator(".step-note")).to_have_text("the candles span too little time for one train + gap + test window")
    expect(steps.locator(".step-done")).to_have_count(3)
    expect(page.locator(".job-detail .log-lines")).to_contain_text("walk-forward validation skipped")
    screenshot(page, "validation-skipped")

    off = make_job(job_name=unique("no validation"), total_steps=3,
                   config={"param_space": space, "min_trades": 0, "validation": {"enabled": False}})
    assert run_training(off["id"], settings)["status"] == "succeeded"
    open_dashboard(page, web, f"/#/jobs/{off['id']}")
    expect(steps.locator(".step-off")).to_contain_text("Validation")
    expect(steps.locator(".step-off .step-state")).to_have_text("off for this job")
    expect(steps.locator(".step-done")).to_have_count(3)
    expect(page.locator(".job-detail .log-lines")).to_contain_text("walk-forward validation is off for this job")


def test_the_form_proposes_the_windows_the_server_derives(page, web):
    from trad.training.windows import fitting_windows

    spans = [0.05, 0.5, 2.08, 10.4, 17.4, 69.4, 104.2, 149.9, 150.0, 365.0, 3000.0]
    page.goto(web.url)
    proposed = page.evaluate("""async (spans) => {
        const windows = await import("/static/walk-forward.js");
        return spans.map((span) => windows.proposeWindows(span));
    }""", spans)
    derived = [None if w is None else {"train": w.train, "test": w.test, "gap": w.gap} for w in map(fitting_windows, spans)]
    assert proposed == derived
