"""The results in a real browser: the best configuration's candles with trade markers, equity and
drawdown (lightweight-charts canvases), zooming loads finer candles, the search's charts, trying
parameters on a worker, and the trained configurations of a batch (also of a deleted job)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.browser.conftest import ARTIFACTS, screenshot, unique
from tests.browser.test_dashboard import open_dashboard, wait_for_status

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
pytestmark = pytest.mark.slow

GRID = {"fast": {"choices": [5, 10, 20]}, "slow": {"choices": [30, 60, 90, 120]}}

# Pixels of one solid colour on every canvas of the chart, by colour name (anti-aliased edges aside).
COUNT_COLORS = """([holder, colors]) => {
  const wanted = Object.entries(colors).map(([name, hex]) => [name, [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))]);
  const counts = Object.fromEntries(wanted.map(([name]) => [name, 0]));
  for (const canvas of document.querySelector(holder).querySelectorAll("canvas")) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] < 250) continue;
      for (const [name, [r, g, b]] of wanted) {
        if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 12) counts[name] += 1;
      }
    }
  }
  return counts;
}"""


def open_grid_job(page, web, api, candles_of, name: str) -> dict:
    """A grid of 12 sma_crossover configurations on 20,000 candles, trained, and its page open."""
    candles_of("SYN", 20_000)
    job = api.create_job(job_name=unique(name), strategy="sma_crossover", symbol="SYN", timeframe="5m",
                         optimizer="grid", param_space=GRID, min_trades=1,
                         validation={"train_window_days": 20, "test_window_days": 10})
    wait_for_status(api, job["id"], ("succeeded",), timeout=90)
    open_dashboard(page, web, f"/#/jobs/{job['id']}")
    return job


def section_shot(locator, name: str) -> None:
    """A screenshot of one part of the page, under tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def chart_colors(page) -> dict[str, str]:
    """The colours the price chart draws with, from the page's own module."""
    colors = page.evaluate("async () => (await import('/static/price-chart.js')).COLORS")
    return {name: colors[name] for name in ("up", "down", "equity", "drawdown", "entry")}


def markers_expected(window: dict) -> int:
    """Entries and exits inside the bars of a /candles answer: what the chart should mark."""
    first, end = window["time"][0], window["time"][-1] + window["seconds_per_bar"]
    return sum((first <= t["entry_time"] < end) + (first <= t["exit_time"] < end) for t in window["trades"])


def candle_requests(page) -> list[dict]:
    asked: list[dict] = []
    page.on("request", lambda r: asked.append({k: v[0] for k, v in parse_qs(urlsplit(r.url).query).items()})
            if "/candles" in r.url else None)
    return asked


def test_the_best_configuration_shows_candles_trades_equity_and_drawdown(page, web, workers, api, candles_of):
    asked = candle_requests(page)
    job = open_grid_job(page, web, api, candles_of, "best")
    best = page.locator(".best-configuration")
    chart = best.locator(".price-chart")
    expect(chart).to_have_attribute("data-state", "ready")
    view = requests.get(f"{web.url}/api/v1/training-jobs/{job['id']}/backtest", timeout=10).json()
    window = requests.get(f"{web.url}/api/v1/backtests/{view['id']}/candles", params=asked[0], timeout=10).json()
    assert int(chart.get_attribute("data-markers")) == markers_expected(window) >= 20
    assert int(chart.get_attribute("data-bars")) == len(window["time"]) and window["trades_complete"]

    pixels = page.evaluate(COUNT_COLORS, [".best-configuration .price-chart-canvas", chart_colors(page)])
    assert pixels["up"] > 500 and pixels["down"] > 500, pixels  # candles drawn
    assert pixels["equity"] > 300 and pixels["drawdown"] > 300, pixels  # equity line, drawdown area's line
    assert pixels["entry"] > 50, pixels  # entry arrows
    expect(best.locator(".backtest-metrics [data-metric=n_trades] dd")).to_have_text(str(view["metrics"]["n_trades"]))
    expect(best.locator(".trade-table tbody tr")).to_have_count(min(50, view["metrics"]["n_trades"]))
    expect(best.locator(".fold-equity .fold-segment")).to_have_count(len(view["folds"]))
    section_shot(best, "results-best")

    best.locator(".price-chart-canvas").scroll_into_view_if_needed()
    box = best.locator(".price-chart-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 4)
    for _ in range(24):  # zoom in until the chart asks for finer candles
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(60)
    expect(chart).not_to_have_attribute("data-per-bar", "10", timeout=10_000)
    expect(chart).to_have_attribute("data-state", "ready")
    zoomed = requests.get(f"{web.url}/api/v1/backtests/{view['id']}/candles", params=asked[-1], timeout=10).json()
    assert zoomed["per_bar"] < 10 and "start" in asked[-1] and int(chart.get_attribute("data-per-bar")) == zoomed["per_bar"]
    assert int(chart.get_attribute("data-markers")) == markers_expected(zoomed)


def test_the_search_draws_its_heatmap_slices_and_parallel_coordinates(page, web, workers, api, candles_of):
    job = open_grid_job(page, web, api, candles_of, "search")
    search = page.locator(".search")
    analysis = requests.get(f"{web.url}/api/v1/training-jobs/{job['id']}/analysis", timeout=10).json()
    cells = search.locator(".search-heatmap rect.heatmap-cell")
    expect(cells).to_have_count(12)
    filled = [cells.nth(i).get_attribute("fill") for i in range(12)]
    assert sum(f.startswith("rgb(") for f in filled) == sum(c > 0 for row in analysis["heatmap"]["count"] for c in row)
    expect(search.locator(".search-slices .slice")).to_have_count(2)
    for name in ("fast", "slow"):
        dots = search.locator(f'.slice[data-param="{name}"] .slice-dots').get_attribute("d")
        assert dots.count("M") == analysis["scored"], dots
    expect(search.locator(".pc-line")).to_have_count(analysis["scored"])
    expect(search.locator(".importance-bar")).to_have_count(2)
    section_shot(search, "results-search")


def test_parameters_tried_on_a_worker_are_shown_and_bad_ones_named(page, web, workers, api, candles_of):
    job = open_grid_job(page, web, api, candles_of, "try")
    form = page.locator("form.try-form")
    expect(form.get_by_label("fast")).to_have_value(str(api.job(job["id"])["best_params"]["fast"]))
    form.get_by_label("fast").fill("7")
    form.get_by_role("button", name="Backtest").click()
    result = page.locator(".try-box .backtest-panel")
    expect(result.locator(".price-chart")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(result.locator(".backtest-summary")).to_contain_text("fast 7")
    with page.console_errors.expect(r"status of 422"):
        form.get_by_label("fast").fill("500")
        form.get_by_role("button", name="Backtest").click()
        expect(form.locator("[data-field='params.fast'] .field-error")).to_have_text("must be between 5 and 50")


def test_trained_configurations_list_a_batchs_symbols_and_keep_a_deleted_jobs_backtest(page, web, workers, api,
                                                                                        candles_of):
    symbols = ["SYN", "SYNB"]
    for n, symbol in enumerate(symbols):
        candles_of(symbol, 20_000, seed=n + 1)
    started = requests.post(f"{web.url}/api/v1/training/train-all?force=true", timeout=10, json={
        "symbols": symbols, "template": {"strategy": "sma_crossover", "timeframe": "5m", "optimizer": "grid",
                                         "param_space": GRID, "min_trades": 1,
                                         "validation": {"train_window_days": 20, "test_window_days": 10}}})
    assert started.status_code == 202, started.text
    jobs = started.json()["jobs"]
    for job in jobs:
        wait_for_status(api, job["job_id"], ("succeeded",), timeout=120)
    requests.delete(f"{web.url}/api/v1/training-jobs/{jobs[1]['job_id']}", timeout=10)

    open_dashboard(page, web, "/")
    page.get_by_role("link", name="Trained configurations").click()
    for symbol in symbols:
        expect(page.get_by_role("heading", name=f"{symbol} · sma_crossover · 5m")).to_be_visible()
    kept = page.locator(".configuration-group", has=page.get_by_role("heading", name="SYNB · sma_crossover · 5m"))
    expect(kept.get_by_role("link", name=re.compile(r"^Job #\d+$"))).to_have_count(0)
    screenshot(page, "results-configurations")
    kept.get_by_role("link").first.click()
    expect(page.locator(".backtest-page .detail-meta")).to_contain_text("the job was deleted")
    expect(page.locator(".backtest-page .price-chart")).to_have_attribute("data-state", "ready")
