"""Results under load: the job page of a 10,000-evaluation job, the best-configuration view of a
1,000,000-candle job, and SSE delivery while ad-hoc backtests of 1M candles run on the workers.

Usage: python scripts/bench/results.py [--evaluations 10000] [--candles 1000000] [--streams 200]
                                       [--backtests 10] [--no-browser]

On a scratch database (random name, dropped at the end) it starts one `trad serve` and two
`trad worker`s, trains two real jobs through the API — a random search of `--evaluations`
liquidity-sweep episodes on 2,000 candles, and a short search with walk-forward validation on
`--candles` candles — then measures:

1. the job page of the first job: each request it makes (the analysis once cold, once cached),
   and in Chromium (unless --no-browser) the time from opening the page to its score chart,
   search views and best configuration drawn — target ≤ 1 s;
2. the best-configuration view of the second job: its two requests with their payload sizes,
   and in Chromium the time to the candle chart drawn — target ≤ 1.5 s;
3. COMMIT→client latency of `--streams` SSE clients (scripts/bench/sse.py's client) over bursts
   of updates of a small job row, alone and while `--backtests` POST /api/v1/backtests of
   `--candles` candles run at once — target: p99 within 1.5× of the figure alone.
`--parts page,view,sse` picks what to measure.
The 1-minute load average is printed with every figure: on a shared machine they are only as good as it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests

from scratch import ADMIN_URL, forget_redis, scratch_database
from sse import StreamClient, free_port, percentile, update_burst

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API = "/api/v1"


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


class System:
    """One `trad serve` and two `trad worker`s on the scratch database."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tag = tag = f"bench-results-{uuid.uuid4().hex[:6]}"
        self.env = {**os.environ, "TRAD_DATABASE_URL": database_url, "PORT": str(self.port), "TRAD_QUEUE": tag,
                    "TRAD_REDIS_PREFIX": f"{tag}:", "TRAD_PROGRESS_INTERVAL": "1", "TRAD_BACKTEST_WAIT": "120"}
        self.processes = [self._start("serve"), self._start("worker", "--name", f"{tag}-1"),
                          self._start("worker", "--name", f"{tag}-2")]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(requests.get(f"{self.url}{API}/health", timeout=2).json()["workers"]) == 2:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise RuntimeError("the web app and its two workers did not come up within 60 s")

    def _start(self, *command: str) -> subprocess.Popen:
        log = open(f"/tmp/trad-bench-results-{command[0]}-{len(getattr(self, 'processes', []))}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "trad", *command], env=self.env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def trad(self, *command: str) -> str:
        return subprocess.run([sys.executable, "-m", "trad", *command], env=self.env, cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    def train(self, **body) -> dict:
        created = requests.post(f"{self.url}{API}/training-jobs", json=body, timeout=30)
        created.raise_for_status()
        job_id = created.json()["id"]
        while True:
            row = requests.get(f"{self.url}{API}/training-jobs/{job_id}", timeout=10).json()
            if row["status"] in ("succeeded", "failed", "stopped"):
                assert row["status"] == "succeeded", row["error_message"]
                return row
            time.sleep(1)

    def stop(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        forget_redis(self.tag, self.env.get("TRAD_REDIS_URL"))


def timed_get(url: str, **params) -> tuple[float, int]:
    started = time.perf_counter()
    answer = requests.get(url, params=params, timeout=60)
    answer.raise_for_status()
    return time.perf_counter() - started, len(answer.content)


def job_page_requests(system: System, job_id: int) -> None:
    base = f"{system.url}{API}/training-jobs/{job_id}"
    for name, url, params in [("analysis, computed", f"{base}/analysis", {}),
                              ("analysis, cached", f"{base}/analysis", {}),
                              ("metrics, all", f"{base}/metrics", {}), ("job row", base, {}),
                              ("logs", f"{base}/logs", {}), ("best configuration", f"{base}/backtest", {"page_size": 50})]:
        seconds, size = timed_get(url, **params)
        print(f"  GET {name:<22} {seconds * 1000:7.1f} ms {size / 1024:8.1f} kB   load {load()}")


def browser_ready(system: System, path: str, ready: list[str], repeat: int = 3) -> dict[str, list[float]]:
    """Seconds to every selector of `ready` present: opening `path` (`repeat` times, the first with
    an empty cache) and going to it from the dashboard's job list (the page's modules loaded)."""
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"opened": [], "from the list": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        for _ in range(repeat):
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(f"{system.url}/{path}")
            for selector in ready:
                page.wait_for_selector(selector, state="attached", timeout=30_000)
            times["opened"].append(time.perf_counter() - started)
        for _ in range(repeat):
            page.goto(f"{system.url}/#/")
            page.wait_for_selector(".job-card", timeout=30_000)
            started = time.perf_counter()
            page.evaluate(f"location.hash = {json.dumps(path)}")
            for selector in ready:
                page.wait_for_selector(selector, state="attached", timeout=30_000)
            times["from the list"].append(time.perf_counter() - started)
        browser.close()
    return times


def print_ready(what: str, times: dict[str, list[float]]) -> None:
    for how, seconds in times.items():
        print(f"  Chromium, {how} → {what}: " + ", ".join(f"{s:.2f} s" for s in seconds)
              + (" (the first with an empty cache)" if how == "opened" else "") + f"   load {load()}")


def stream_latencies(system: System, database_url: str, job_id: int, streams: int, updates: int,
                     during=None) -> list[float]:
    """COMMIT→client seconds of every update reaching every client; `during()` runs meanwhile."""
    async def run() -> list[float]:
        clients = [StreamClient() for _ in range(streams)]
        tasks = [asyncio.create_task(c.run(system.port)) for c in clients]
        await asyncio.gather(*(c.ready.wait() for c in clients))
        errors = [c.error for c in clients if c.error]
        assert not errors, errors[:3]
        worker = threading.Thread(target=during) if during else None
        if worker:
            worker.start()
            await asyncio.sleep(3)  # the backtests are loading their candles
        committed = await asyncio.to_thread(update_burst, database_url, job_id, updates, 0.05)
        await asyncio.sleep(2)
        latencies = [c.received[v] - t for c in clients for v, t in committed.items() if v in c.received]
        for c in clients:
            c.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker:
            worker.join()
        return latencies

    return asyncio.run(run())


def adhoc_backtests(system: System, count: int, symbol: str, outcome: dict) -> None:
    """`count` POST /backtests at once; their statuses and seconds go into `outcome`."""
    def one(i: int) -> None:
        started = time.perf_counter()
        answer = requests.post(f"{system.url}{API}/backtests", timeout=180, json={
            "strategy": "liquidity_sweep", "symbol": symbol, "timeframe": "5m", "params": {"rr_ratio": 1 + i / 10}})
        outcome.setdefault("answers", []).append((answer.status_code, time.perf_counter() - started))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def report_latencies(label: str, latencies: list[float]) -> float:
    ms = [x * 1000 for x in latencies]
    p99 = percentile(ms, 0.99)
    print(f"  {label:<34} p50 {percentile(ms, 0.5):6.1f} ms  p99 {p99:6.1f} ms  max {max(ms):6.1f} ms "
          f"({len(ms):,} deliveries)   load {load()}")
    return p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--backtests", type=int, default=10)
    parser.add_argument("--updates", type=int, default=160)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--parts", default="page,view,sse", help="which of page, view, sse to measure")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    with scratch_database(args.admin_url) as url:
        system = System(url)
        try:
            run(system, url, args)
        finally:
            system.stop()


def run(system: System, url: str, args: argparse.Namespace) -> None:
    parts = set(args.parts.split(","))
    system.trad("data", "synth", "--symbol", "BIG", "--timeframe", "5m", "--candles", str(args.candles), "--seed", "2")
    if "page" in parts:
        measure_page(system, args)
    if "view" in parts:
        measure_view(system, url, args)
    if "sse" in parts:
        measure_sse(system, url, args, bench_row(url))


def bench_row(url: str) -> int:
    """A small job row for the streams to carry, as scripts/bench/sse.py uses (the 1M-candle job's row,
    40 kB with its 112 folds, would time the copying of 8 MB to 200 clients per change instead)."""
    return int(subprocess.run(["psql", url, "-Atc", "INSERT INTO training_jobs (job_name, strategy, symbol, timeframe, "
                               "optimizer) VALUES ('bench', 'sma_crossover', 'BIG', '5m', 'grid') RETURNING id"],
                              capture_output=True, text=True, check=True).stdout.split()[0])


def measure_page(system: System, args: argparse.Namespace) -> None:
    system.trad("data", "synth", "--symbol", "SMALL", "--timeframe", "5m", "--candles", "2000", "--seed", "1")
    started = time.perf_counter()
    searched = system.train(strategy="liquidity_sweep", symbol="SMALL", timeframe="5m", optimizer="random",
                            n_iterations=args.evaluations, n_jobs=2, seed=1, min_trades=1, validation={"enabled": False})
    print(f"job {searched['id']}: {args.evaluations:,} evaluations in {time.perf_counter() - started:.0f} s")
    print(f"\n1. the job page of the {args.evaluations:,}-evaluation job (target ≤ 1 s)")
    job_page_requests(system, searched["id"])
    detail_ready = [".chart-plot svg[aria-label]", ".search-view[data-scored]:not([data-scored='0'])",
                    ".best-configuration .price-chart[data-state='ready']"]
    if not args.no_browser:
        print_ready("score chart, search views and best configuration drawn",
                    browser_ready(system, f"#/jobs/{searched['id']}", detail_ready))


def measure_view(system: System, url: str, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    big = system.train(strategy="liquidity_sweep", symbol="BIG", timeframe="5m", optimizer="random", n_iterations=8,
                       seed=1, min_trades=1)
    folds = len(big["result"]["validation"]["folds"])
    print(f"job {big['id']}: {args.candles:,} candles, 8 evaluations, {folds} folds in {time.perf_counter() - started:.0f} s")
    print(f"\n2. the best configuration of the {args.candles:,}-candle job (target ≤ 1.5 s)")
    view = requests.get(f"{system.url}{API}/training-jobs/{big['id']}/backtest", timeout=30).json()
    for name, path, params in [("backtest", f"training-jobs/{big['id']}/backtest", {"page_size": 50}),
                               ("candles, whole range", f"backtests/{view['id']}/candles", {"max_bars": 3000})]:
        seconds, size = timed_get(f"{system.url}{API}/{path}", **params)
        print(f"  GET {name:<22} {seconds * 1000:7.1f} ms {size / 1024:8.1f} kB   load {load()}")
    stored = subprocess.run(["psql", url, "-Atc", f"SELECT pg_column_size(b.*) + coalesce((SELECT sum(pg_column_size(t.*)) "
                             f"FROM backtest_trades t WHERE t.backtest_id = b.id), 0) FROM backtests b WHERE b.id = {view['id']}"],
                            capture_output=True, text=True).stdout.strip()
    print(f"  stored: {int(stored) / 1024:.0f} kB for {view['metrics']['n_trades']:,} trades and {folds} folds")
    if not args.no_browser:
        print_ready("candle chart drawn",
                    browser_ready(system, f"#/jobs/{big['id']}", [".best-configuration .price-chart[data-state='ready']"]))


def measure_sse(system: System, url: str, args: argparse.Namespace, job_id: int) -> None:
    print(f"\n3. SSE COMMIT→client, {args.streams} streams, {args.updates} updates 50 ms apart (target: within 1.5×)")
    alone = report_latencies("alone", stream_latencies(system, url, job_id, args.streams, args.updates))
    outcome: dict = {}
    busy = stream_latencies(system, url, job_id, args.streams, args.updates,
                            during=lambda: adhoc_backtests(system, args.backtests, "BIG", outcome))
    loaded = report_latencies(f"while {args.backtests} backtests of {args.candles:,} run", busy)
    answers = outcome.get("answers", [])
    print(f"  the backtests: statuses {sorted(s for s, _ in answers)}, "
          f"{min(t for _, t in answers):.1f}–{max(t for _, t in answers):.1f} s each; p99 ratio {loaded / alone:.2f}×")
    print(json.dumps({"p99_alone_ms": round(alone, 1), "p99_loaded_ms": round(loaded, 1)}))

if __name__ == "__main__":
    main()
