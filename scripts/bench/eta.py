"""How honest the ETA is: whole jobs through real `trad serve` + `trad worker` processes.

Usage: .venv/bin/python scripts/bench/eta.py [--candles 60000] [--seconds 40] [--kinds random-1-on,batch]
                                             [--rounds 1] [--dump samples.json]

It creates its own database (`trad_bench_<random>`, dropped at the end) on the PostgreSQL of
TRAD_BENCH_ADMIN_URL (default the local one), its own Redis prefix and queue, starts one web
and one worker process (progress interval 1 s) and runs, one after the other: random, grid
and Bayesian searches with n_jobs 1 and 2, validation on and off; a random job stopped at
40 % of its search and resumed (the resumed run is scored); a batch of 3 symbols of which 1
is skipped (trained already). Each search is sized from a short search timed here to last
about `--seconds` (Bayesian ones search 6× the candles, 10× on two processes, with at most
600 episodes: past ~1,000 results a single model fit takes 5–25 s here, erratically). Every 0.5 s it reads the
job row through the API (a batch: /training/progress) and, once the job has ended, scores
every sample taken once 20 % of the job's duration had passed while at least 2 s remained:

    error = |estimated_completion − finished_at| ÷ (finished_at − sample time)

It prints per job the median and 90th percentile of that error, how many samples had no ETA,
the job's duration and the 1-minute load average while it ran, and beside it how the search's
speed moved from its first fifth to its last and the share of CPU time the hypervisor took
(steal): a machine whose speed changes mid-job is the hard case for an estimator. With
`--rounds N` every kind runs N times, kind after kind, and a last table scores each kind over
the samples of all its runs (and says how many of them met the target alone): one run of a
30-second job is a single draw of a shared machine's weather.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch import forget_redis, scratch_database  # noqa: E402

from trad.data.synthetic import synthetic_candles  # noqa: E402
from trad.optimize import BacktestEvaluator, build_search_space, make_optimizer  # noqa: E402
from trad.strategies import get_strategy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TRAD = str(Path(sys.executable).with_name("trad"))
SAMPLE_SECONDS = 0.5
FIRST_SHARE = 0.2
LAST_SECONDS = 2.0
TIMEFRAME = "5m"
STRATEGY = "liquidity_sweep"
WINDOWS = {"train_window_days": 60, "test_window_days": 20}
BAYESIAN_MODEL_SECONDS = 0.005  # a first guess of the model's time per episode, for sizing only
BAYESIAN_EPISODES = 600  # at most: past ~1,000 results one model fit takes 5–25 s here, erratically
BAYESIAN_CANDLES = 6     # Bayesian jobs search a symbol with this many times the candles…
SHARED_BAYESIAN_CANDLES = 10  # …on two processes this many: 600 episodes then last 20 s or more, not 16
JOB_OVERHEAD = 2.0       # an episode in a job here takes about this many times one run alone
TARGET_MEDIAN, TARGET_P90 = 0.10, 0.25


@dataclass
class Score:
    """The scored samples of one job."""

    kind: str
    duration: float
    errors: list[float]
    missing: int
    load: float
    status: str
    notes: list[str] = field(default_factory=list)
    trace: list[dict] = field(default_factory=list)  # every sample: seconds in, seconds left, signed error, step
    round: int = 1


class Api:
    """A small JSON client of the web process."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read().decode()[:400]}") from None
        return json.loads(text) if text else {}


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_processes(env: dict[str, str], port: int, log_dir: Path) -> list[subprocess.Popen]:
    """The web and worker processes, logging to files in `log_dir`."""
    processes = []
    for name, args in (("web", ["serve", "--port", str(port)]), ("worker", ["worker"])):
        log = open(log_dir / f"{name}.log", "w")
        processes.append(subprocess.Popen([TRAD, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=ROOT))
    return processes


def wait_healthy(api: Api, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = api.call("GET", "/api/v1/health")
            if health.get("workers"):
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.5)
    raise RuntimeError("the web and worker processes did not come up")


def episode_seconds(candles: int) -> float:
    """An episode's time in a job on these candles, here and now: a short random search, timed, ×
    JOB_OVERHEAD (the job's own writes, and the web process and the sampling beside it)."""
    data = synthetic_candles(candles, seed=4)
    search = make_optimizer("random", build_search_space(get_strategy(STRATEGY), None), n_iterations=40, seed=1)
    started = time.perf_counter()
    search.run(BacktestEvaluator(data, STRATEGY, {}, "sharpe", 1), callback=lambda *call: None)
    return JOB_OVERHEAD * (time.perf_counter() - started) / 40


def grid_space(configurations: int) -> dict:
    """A liquidity_sweep grid of about `configurations` configurations (up to 28,000)."""
    lookbacks = 20  # 10…200 step 10
    reversals = max(1, min(10, math.ceil(configurations / (lookbacks * 20 * 7))))
    per_lookback = configurations / (lookbacks * reversals)
    depths = max(1, min(20, int(per_lookback // 7) or 1))
    ratios = max(1, min(7, round(per_lookback / depths)))
    return {"key_level_lookback": {"low": 10, "high": 200, "step": 10},
            "pierce_depth": {"low": 0.05, "high": 0.05 * depths, "step": 0.05},
            "rr_ratio": {"low": 1.0, "high": 1.0 + 0.5 * (ratios - 1), "step": 0.5},
            "reversal_candles": {"low": 1, "high": reversals, "step": 1} if reversals > 1 else 3,
            "volume_spike_threshold": 2.5, "max_hold_candles": 48}


def job_body(optimizer: str, n_jobs: int, validation: bool, episodes: int, symbol: str = "ETA_A") -> dict:
    body = {"strategy": STRATEGY, "symbol": symbol, "timeframe": TIMEFRAME, "optimizer": optimizer,
            "n_jobs": n_jobs, "min_trades": 1, "seed": 7,
            "validation": {"enabled": validation, **WINDOWS}}
    if optimizer == "grid":
        body["param_space"] = grid_space(episodes)
    else:
        body["n_iterations"] = min(10_000, episodes)
    return body


class Sampler:
    """Reads a job row (or the batch progress) every SAMPLE_SECONDS in a thread."""

    def __init__(self, api: Api, path: str) -> None:
        self.api, self.path = api, path
        self.samples: list[tuple[datetime, dict]] = []
        self.loads: list[float] = []
        self.cpu: list[tuple[datetime, tuple[int, int]]] = []  # (when, CPU time stolen and in all) per sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                body = self.api.call("GET", self.path)
                self.samples.append((now_utc(), body))
            except (OSError, RuntimeError):
                pass
            self.loads.append(os.getloadavg()[0])
            if (cpu := cpu_times()) is not None:
                self.cpu.append((now_utc(), cpu))
            self._stop.wait(max(0.0, SAMPLE_SECONDS - (time.monotonic() - started)))

    @property
    def last(self) -> dict:
        return self.samples[-1][1] if self.samples else {}

    def stolen(self, began: datetime) -> str:
        """The share of CPU time the hypervisor gave other machines since `began` (steal)."""
        times = [cpu for at, cpu in self.cpu if at >= began]
        if len(times) < 2 or times[-1][1] <= times[0][1]:
            return ""
        return f"CPU stolen {100 * (times[-1][0] - times[0][0]) / (times[-1][1] - times[0][1]):.1f} %"


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) CPU time of the machine so far, in clock ticks, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is in user's already
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def wait_for(sampler: Sampler, done, timeout: float = 600.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sampler.samples and done(sampler.last):
            return sampler.last
        time.sleep(0.1)
    raise RuntimeError(f"{sampler.path}: not done within {timeout:.0f} s")


def score(kind: str, forecasts: list[tuple[datetime, datetime | None]], began: datetime, ended: datetime,
          loads: list[float], status: str) -> Score:
    """The error of every forecast sampled after FIRST_SHARE of the duration while LAST_SECONDS remained."""
    duration = (ended - began).total_seconds()
    errors, missing = [], 0
    for at, forecast in forecasts:
        left = (ended - at).total_seconds()
        if (at - began).total_seconds() < FIRST_SHARE * duration or left < LAST_SECONDS:
            continue
        if forecast is None:
            missing += 1
            continue
        errors.append(abs(signed_error(at, forecast, ended)))
    return Score(kind, duration, errors, missing, max(loads) if loads else os.getloadavg()[0], status)


def signed_error(at: datetime, forecast: datetime, ended: datetime) -> float:
    """(estimated_completion − finished_at) ÷ the time left at `at`: > 0 when the forecast came late."""
    return (forecast - ended).total_seconds() / (ended - at).total_seconds()


def trace_entry(at: datetime, forecast: datetime | None, began: datetime, ended: datetime) -> dict:
    """One sample for --dump: seconds in, seconds left, signed error (None without a forecast)."""
    left = (ended - at).total_seconds()
    return {"at": round((at - began).total_seconds(), 2), "left": round(left, 2),
            "error": None if forecast is None or left <= 0 else round(signed_error(at, forecast, ended), 4)}


def run_job(api: Api, kind: str, body: dict, stop_at: float | None = None) -> Score:
    """One job from creation to its end; with `stop_at`, stopped once its search is that far, then resumed."""
    job = api.call("POST", "/api/v1/training-jobs", body)
    path = f"/api/v1/training-jobs/{job['id']}"
    with Sampler(api, path) as sampler:
        began = None
        if stop_at is not None:
            wait_for(sampler, lambda row: row["step_number"] >= 2 and row["step_percentage"] >= 100 * stop_at
                     or row["status"] not in ("queued", "running"))
            api.call("POST", path + "/stop")
            wait_for(sampler, lambda row: row["status"] == "stopped")
            began = now_utc()
            api.call("POST", path + "/resume")
        final = wait_for(sampler, lambda row: row["status"] in ("succeeded", "failed", "stopped")
                         and (began is None or parse_time(row["finished_at"]) > began))
    began = began or parse_time(final["started_at"])
    ended = parse_time(final["finished_at"])
    forecasts = [(at, parse_time(row["estimated_completion"])) for at, row in sampler.samples
                 if row["status"] == "running" and at >= began]
    result = score(kind, forecasts, began, ended, sampler.loads, final["status"])
    result.notes.append(f"{final['total_episodes']} episodes")
    result.notes.append(search_drift(api, path, [(at, row) for at, row in sampler.samples if at >= began]))
    result.notes.append(sampler.stolen(began))
    for at, row in sampler.samples:
        if row["status"] == "running" and at >= began:
            result.trace.append({**trace_entry(at, parse_time(row["estimated_completion"]), began, ended),
                                 "step": row["step_number"], "step_percentage": row["step_percentage"]})
    return result


def search_drift(api: Api, path: str, samples: list[tuple[datetime, dict]]) -> str:
    """How the search's speed moved from its first fifth to its last: episodes a second (wall) and
    the mean backtest of those episodes — what no forecast from the speed shown can foresee."""
    search = [(at.timestamp(), row["current_episode"] or 0) for at, row in samples
              if row["status"] == "running" and row["step_number"] == 2]
    if len(search) < 10:
        return "search too short to see its drift"
    fifth = len(search) // 5

    def rate(part: list[tuple[float, int]]) -> float:
        return (part[-1][1] - part[0][1]) / max(1e-9, part[-1][0] - part[0][0])

    metrics = api.call("GET", f"{path}/metrics")
    durations = [ms for ms, iteration in zip(metrics["duration_ms"], metrics["iterations"])
                 if search[0][1] < iteration <= search[-1][1]]
    cut = max(1, len(durations) // 5)
    first, last = durations[:cut], durations[-cut:]
    return (f"episodes/s {rate(search[:fifth + 1]):.0f} → {rate(search[-fifth - 1:]):.0f}, backtest "
            f"{statistics.mean(first):.1f} → {statistics.mean(last):.1f} ms" if durations else "")


def run_batch(api: Api, body: dict, round_: int = 0) -> Score:
    """Train ETA_C first (so the batch skips it), then a batch over ETA_B, ETA_D and ETA_C (the
    symbols of round 2 on are ETA_B2, ETA_D2, ETA_C2 …: each round's batch trains fresh ones)."""
    trained, fresh = batch_symbols(round_)
    first = api.call("POST", "/api/v1/training-jobs", {**job_body("random", 1, False, 3, trained)})
    with Sampler(api, f"/api/v1/training-jobs/{first['id']}") as sampler:
        wait_for(sampler, lambda row: row["status"] in ("succeeded", "failed", "stopped"))
    template = {k: v for k, v in body.items() if k != "symbol"}
    started = api.call("POST", "/api/v1/training/train-all", {"symbols": [*fresh, trained],
                                                              "template": template})
    with Sampler(api, "/api/v1/training/progress") as sampler:
        wait_for(sampler, lambda progress: not progress["training_in_progress"])
    jobs = [api.call("GET", f"/api/v1/training-jobs/{job['job_id']}") for job in started["jobs"]]
    began = parse_time(sampler.samples[0][1]["started_at"]) if sampler.samples else now_utc()
    ended = max(parse_time(job["finished_at"]) for job in jobs)
    forecasts = []
    for at, progress in sampler.samples:
        if not progress["training_in_progress"]:
            continue
        eta = (progress.get("timing") or {}).get("eta_seconds")
        forecasts.append((at, None if eta is None else datetime.fromtimestamp(at.timestamp() + eta, timezone.utc)))
    status = "succeeded" if all(job["status"] == "succeeded" for job in jobs) else "some failed"
    result = score("batch, 3 symbols, 1 skipped", forecasts, began, ended, sampler.loads, status)
    result.notes.append(f"{len(jobs)} jobs, skipped {', '.join(started['skipped'])}")
    result.notes.append(sampler.stolen(began))
    result.trace.extend(trace_entry(at, forecast, began, ended) for at, forecast in forecasts)
    return result


def batch_symbols(round_: int) -> tuple[str, list[str]]:
    """The batch's symbol trained beforehand and its two fresh ones, in round `round_` (from 0)."""
    suffix = str(round_ + 1) if round_ else ""
    return f"ETA_C{suffix}", [f"ETA_B{suffix}", f"ETA_D{suffix}"]


def kinds(episode: float, long_episode: float, seconds: float) -> dict[str, tuple]:
    """Every kind of job: (body, stop_at)."""
    plain = max(20, int(seconds / episode))
    bayesian = max(20, min(BAYESIAN_EPISODES, int(seconds / (long_episode + BAYESIAN_MODEL_SECONDS))))
    table = {}
    for optimizer, episodes, symbol in (("random", plain, "ETA_A"), ("grid", plain, "ETA_A"),
                                        ("bayesian", bayesian, "ETA_L")):
        for n_jobs in (1, 2):
            # two processes run ~1.7× the episodes a second: size their jobs to last as long
            sized = episodes if n_jobs == 1 else min(int(1.7 * episodes), BAYESIAN_EPISODES if optimizer == "bayesian"
                                                       else int(1.7 * episodes))
            searched = "ETA_M" if optimizer == "bayesian" and n_jobs == 2 else symbol
            for validation in (True, False):
                name = f"{optimizer}-{n_jobs}-{'on' if validation else 'off'}"
                table[name] = (job_body(optimizer, n_jobs, validation, sized, searched), None)
    table["resumed"] = (job_body("random", 1, True, int(plain * 1.4)), 0.4)
    table["batch"] = (job_body("random", 1, True, max(10, plain // 2)), None)
    return table


def print_table(scores: list[Score]) -> None:
    print(f"\n| job | duration | samples | no ETA | median error | p90 error | load (max) | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for s in scores:
        median = statistics.median(s.errors) if s.errors else float("nan")
        p90 = quantile90(s.errors)
        notes = "; ".join([s.status, *(note for note in s.notes if note)])
        print(f"| {s.kind} | {s.duration:.1f} s | {len(s.errors)} | {s.missing} | {100 * median:.1f} % | "
              f"{100 * p90:.1f} % | {s.load:.1f} | {notes} |", flush=True)


def within_target(errors: list[float]) -> bool:
    return bool(errors) and statistics.median(errors) <= TARGET_MEDIAN and quantile90(errors) <= TARGET_P90


def quantile90(errors: list[float]) -> float:
    return statistics.quantiles(errors, n=10)[-1] if len(errors) >= 2 else (errors or [float("nan")])[0]


def print_pooled(scores: list[Score]) -> None:
    """Per kind: every sample of its runs pooled, and how many of its runs alone met the target."""
    print("\n| job | runs | samples | median error | p90 error | runs within target | runs' medians |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for kind in dict.fromkeys(s.kind for s in scores):
        runs = [s for s in scores if s.kind == kind]
        pooled = [error for s in runs for error in s.errors]
        if not pooled:
            print(f"| {kind} | {len(runs)} | 0 | – | – | 0 of {len(runs)} | too short to score |")
            continue
        medians = ", ".join(f"{100 * statistics.median(s.errors):.1f}" if s.errors else "–" for s in runs)
        print(f"| {kind} | {len(runs)} | {len(pooled)} | {100 * statistics.median(pooled):.1f} % | "
              f"{100 * quantile90(pooled):.1f} % | {sum(within_target(s.errors) for s in runs)} of {len(runs)} | "
              f"{medians} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=40.0, help="about how long each job should last")
    parser.add_argument("--kinds", default=None, help="comma-separated subset, e.g. random-1-on,resumed,batch")
    parser.add_argument("--logs", default=None, help="keep the web and worker logs in this directory")
    parser.add_argument("--dump", default=None, help="write every job's samples (signed error, step) to this JSON file")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every kind this many times, kind after kind; then score each kind over all its runs")
    args = parser.parse_args()
    episode = episode_seconds(args.candles)
    table = kinds(episode, episode_seconds(BAYESIAN_CANDLES * args.candles), args.seconds)
    chosen = args.kinds.split(",") if args.kinds else list(table)
    print(f"ETA bench: {args.candles:,} candles of {TIMEFRAME}, a backtest takes {1000 * episode:.1f} ms here, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    log_dir = Path(args.logs) if args.logs else Path(f"/tmp/trad-eta-{os.getpid()}")
    log_dir.mkdir(parents=True, exist_ok=True)
    admin = os.environ.get("TRAD_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    scores: list[Score] = []
    with scratch_database(admin) as url:
        port, tag = free_port(), f"trad-eta-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "TRAD_DATABASE_URL": url, "TRAD_REDIS_PREFIX": f"{tag}:",
               "TRAD_QUEUE": f"{tag}:training", "TRAD_PROGRESS_INTERVAL": "1", "TRAD_PORT": str(port)}
        symbols = [("ETA_A", 1, args.candles), ("ETA_L", 4, BAYESIAN_CANDLES * args.candles)]
        if any(name.startswith("bayesian-2") for name in chosen):
            symbols.append(("ETA_M", 6, SHARED_BAYESIAN_CANDLES * args.candles))
        for round_ in range(args.rounds if "batch" in chosen else 0):
            trained, (fresh_b, fresh_d) = batch_symbols(round_)
            symbols += [(fresh_b, 2, args.candles), (trained, 3, args.candles), (fresh_d, 5, args.candles)]
        for symbol, seed, count in symbols:
            subprocess.run([TRAD, "data", "synth", "--symbol", symbol, "--timeframe", TIMEFRAME,
                            "--candles", str(count), "--seed", str(seed)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        processes = start_processes(env, port, log_dir)
        try:
            api = Api(f"http://127.0.0.1:{port}")
            wait_healthy(api)
            for round_ in range(args.rounds):
                for name in chosen:
                    body, stop_at = table[name]
                    result = run_batch(api, body, round_) if name == "batch" else run_job(api, name, body, stop_at)
                    result.round = round_ + 1
                    scores.append(result)
                    print_table([result])
        finally:
            stop_processes(processes)
            forget_redis(tag)
    print(f"\nall jobs (load average {os.getloadavg()[0]:.2f} at the end; logs in {log_dir}):")
    print_table(scores)
    if args.rounds > 1:
        print(f"\nevery kind over its {args.rounds} runs (its samples pooled; target median ≤ "
              f"{100 * TARGET_MEDIAN:.0f} %, p90 ≤ {100 * TARGET_P90:.0f} %):")
        print_pooled(scores)
    if args.dump:
        runs = {f"{s.kind} #{s.round}" if args.rounds > 1 else s.kind: s.trace for s in scores}
        Path(args.dump).write_text(json.dumps(runs, indent=1))


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stop the web and worker processes; a worker still running a job is asked twice (RQ's cold shutdown)."""
    for attempt in range(3):
        for process in processes:
            if process.poll() is None:
                process.terminate() if attempt < 2 else process.kill()
        try:
            for process in processes:
                process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *frame: sys.exit("stopped"))  # so the database is still dropped
    main()
