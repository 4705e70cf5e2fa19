"""`trad demo`: the whole system on one machine, from one command.

PostgreSQL and Redis come from TRAD_DATABASE_URL / TRAD_REDIS_URL when those are set;
otherwise each is embedded under the data folder (trad/embedded.py). Then: `<data>/demo.json`
(the servers and web URL that other `trad` commands started in the same directory, or with
`trad --demo DIR`, use; see trad/config.py), migrations, the demo job's size from a short
calibration (trad/demo_job.py: about a minute of work here), `trad serve` and `trad worker` as
child processes (progress written every second), sample candles (a re-run reuses them), the
demo job, and the URLs of the dashboard and of the job's own page.

Stopping (Ctrl-C, SIGTERM, SIGHUP) exits 0 and leaves nothing running: the demo's jobs are
asked to stop (they end `stopped` and can be resumed), demo.json goes, web and worker get SIGTERM (then
SIGKILL for whatever is left in their sessions), Redis is shut down with SAVE and
PostgreSQL with `pg_ctl stop`. If the demo itself is SIGKILLed, its children follow
(Linux) but the embedded PostgreSQL keeps running until the next `trad demo` on the same
folder reuses and stops it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import click

from trad.config import DEMO_DIR, DEMO_LOCK, DemoServers, Settings, remove_demo_file
from trad.demo_job import (DEMO_SYMBOLS, JOB_SYMBOL, DemoJob, demo_candles_summary, demo_job_request,
                           load_demo_candles, size_demo_job)
from trad.embedded import Child, EmbeddedPostgres, EmbeddedRedis, stop_children
from trad.errors import InvalidInput, ServiceUnavailable, first_line

STARTUP_TIMEOUT = 60.0
JOB_STOP_TIMEOUT = 5.0  # seconds the demo's jobs get to stop on their own before the worker goes
PROGRESS_INTERVAL = "1"  # seconds between the demo job's progress writes (TRAD_PROGRESS_INTERVAL wins)


class DemoStopped(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: shut everything down and exit 0."""


def check_port_free(host: str, port: int) -> None:
    """InvalidInput (exit 2) when the web port is taken; binds as gunicorn does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput.field("--port", f"{host}:{port} is not available ({exc.strerror}); "
                                               "choose another port with --port") from None


def lock_data_dir(data_dir: Path, attempts: int = 5) -> Any:
    """Hold `<data>/demo.lock` while the demo runs: two demos must not share embedded servers.

    Other commands test the lock for an instant (`DemoServers.running`): a few tries get past that.
    """
    handle = open(data_dir / DEMO_LOCK, "w")
    for attempt in range(attempts):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError:
            time.sleep(0.05)
    handle.close()
    raise InvalidInput.field("--data-dir", f"another trad demo is running on {data_dir}")


def say(message: str, err: bool = False) -> None:
    """click.echo that a closed terminal or pipe cannot break: stopping must go on regardless."""
    try:
        click.echo(message, err=err)
    except OSError:
        pass


def trad_command() -> str:
    """How a shell here runs trad: `trad` when that is on PATH, else the path the demo was started by."""
    started = Path(sys.argv[0])
    if started.name != "trad":  # python -m trad
        return "trad"
    on_path = shutil.which("trad")
    if on_path and Path(on_path).resolve() == started.resolve():
        return "trad"
    try:
        return str(started.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(started)


# --- the demo --------------------------------------------------------------------------

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """The handler of SIGINT/SIGTERM/SIGHUP: raises DemoStopped, or holds it back inside `deferred()`."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.deferring:
            self.pending = signum
            return
        raise DemoStopped(signal.Signals(signum).name)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A step that must not be cut short (initdb killed half-way leaves a broken folder)."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            if self.pending is not None:
                raise DemoStopped(signal.Signals(self.pending).name)


@dataclass
class Demo:
    """What one `trad demo` started, so that stopping undoes exactly that."""

    data_dir: Path
    host: str
    port: int
    quick: bool
    settings: Settings
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    children: list[Child] = field(default_factory=list)
    worker_name: str = field(default_factory=lambda: f"trad-demo-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    job: DemoJob | None = None
    job_id: int | None = None
    db: Any = None
    signals: StopSignals = field(default_factory=StopSignals)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Servers, schema, the job's size, web and worker, candles, the demo job; returns once the
        web app answers. The calibration runs before web and worker start, which would slow it."""
        from trad.db import Database, upgrade

        self.start_servers()
        DemoServers(self.settings.database_url, self.settings.redis_url, self.settings.queue,
                    self.settings.redis_prefix, self.url).write(self.data_dir)
        upgrade(self.settings.database_url)
        self.job = size_demo_job(self.quick)
        self.start_children()
        self.db = Database(self.settings.database_url, max_connections=2, application_name="trad-demo")
        started = time.perf_counter()
        load_demo_candles(self.db, [JOB_SYMBOL], sample=False)  # the job's first: it starts meanwhile
        self.job_id = self.enqueue_job()
        load_demo_candles(self.db, [s for s in DEMO_SYMBOLS if s != JOB_SYMBOL])
        click.echo(f"  candles     {demo_candles_summary()} ({time.perf_counter() - started:.1f} s)")
        wait_for_web(self.url, self.settings.api_token, self.children[0])

    def start_children(self) -> None:
        """`trad serve` and `trad worker` on the demo's servers; progress written every second. A
        second worker serves only ad-hoc backtests, so "try these parameters" answers while the
        demo job trains."""
        env = {**os.environ, "TRAD_DATABASE_URL": self.settings.database_url,
               "TRAD_REDIS_URL": self.settings.redis_url, "PYTHONUNBUFFERED": "1",
               "TRAD_PROGRESS_INTERVAL": os.environ.get("TRAD_PROGRESS_INTERVAL") or PROGRESS_INTERVAL}
        trad = [sys.executable, "-m", "trad"]
        logs = self.data_dir / "logs"
        self.children.append(Child.start("web", [*trad, "serve", "--host", self.host, "--port", str(self.port)],
                                         logs / "web.log", env))
        self.children.append(Child.start("worker", [*trad, "worker", "--name", self.worker_name],
                                         logs / "worker.log", env))
        self.children.append(Child.start("backtest worker", [*trad, "worker", "--backtests-only",
                                                             "--name", f"{self.worker_name}-backtests"],
                                         logs / "backtest-worker.log", env))

    def start_servers(self) -> None:
        """Embed PostgreSQL and Redis unless their URLs were given."""
        settings = self.settings
        if not settings.database_url_set:
            self.postgres = EmbeddedPostgres(self.data_dir / "pg")
            with self.signals.deferred():
                settings = settings.with_(database_url=self.postgres.start())
        if not settings.redis_url_set:
            self.redis = EmbeddedRedis(self.data_dir / "redis", self.data_dir / "logs" / "redis.log")
            settings = settings.with_(redis_url=self.redis.start())
        self.settings = settings
        click.echo(f"trad demo, data in {self.data_dir}")
        click.echo(f"  PostgreSQL  {settings.database_url}" + ("  (embedded)" if self.postgres else ""))
        click.echo(f"  Redis       {settings.redis_url}" + ("  (embedded)" if self.redis else ""))

    def enqueue_job(self) -> int:
        from trad.jobs.control import create_job
        from trad.jobs.queue import connect_redis
        from trad.jobs.requests import JobRequest

        request = JobRequest.model_validate(demo_job_request(self.job.iterations, self.quick))
        row = create_job(self.db, connect_redis(self.settings), self.settings, request)
        return int(row["id"])

    def announce(self) -> None:
        """The dashboard, the job's own page, what the job does and how to reach it from a shell."""
        request = demo_job_request(self.job.iterations, self.quick)
        wf = request["validation"]
        size = (f"sized to take about {self.job.forecast_seconds:.0f} s here (one backtest "
                f"{1000 * self.job.backtest_seconds:.0f} ms)" if self.job.backtest_seconds else "a quick one")
        click.echo(f"\nDashboard: {self.url}/")
        click.echo(f"Demo job {self.job_id}: {self.url}/#/jobs/{self.job_id}")
        click.echo(f"  {request['strategy']} on {request['symbol']} {request['timeframe']}: Bayesian search of "
                   f"{request['n_iterations']:,} configurations, {size};")
        click.echo(f"  then walk-forward validation of the best {wf['candidates']} "
                   f"({wf['train_window_days']} + {wf['test_window_days']} day folds).")
        trad, here = trad_command(), Path.cwd()
        if self.data_dir == (here / DEMO_DIR).resolve():
            click.echo(f"In another shell in {here}, trad commands use the demo's servers:")
        else:
            click.echo("In another shell, trad commands use the demo's servers with --demo:")
            trad += f" --demo {self.data_dir}"
        click.echo(f"  {trad} watch {self.job_id}\n  {trad} jobs")
        click.echo(f"Logs: {self.data_dir / 'logs'}.  Press Ctrl-C to stop everything.")

    def wait(self) -> int:
        """Until a signal (DemoStopped) or a child's unexpected exit (1)."""
        while True:
            for child in self.children:
                if child.process.poll() is not None:
                    click.echo(f"error: the {child.name} process exited (status {child.process.returncode}); "
                               f"last lines of {child.log_path}:\n{child.log_tail()}", err=True)
                    return 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Undo start, in reverse; each step runs even if an earlier one failed."""
        steps = [("the demo's settings file", lambda: remove_demo_file(self.data_dir)), ("jobs", self.stop_jobs), ("web and worker", lambda: stop_children(self.children)),
                 ("database pool", self.db.close if self.db else None),
                 ("Redis", self.redis.stop if self.redis else None),
                 ("PostgreSQL", self.postgres.stop if self.postgres else None)]
        for name, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # keep going: the servers must stop whatever else failed
                reason = first_line(exc)
                say(f"warning: stopping {name}: {reason}", err=True)

    def stop_jobs(self, timeout: float = JOB_STOP_TIMEOUT) -> None:
        """Ask the demo job and whatever our worker runs to stop; wait until they have."""
        if self.db is None:
            return
        from trad.errors import Conflict, NotFound
        from trad.jobs.control import stop_job
        from trad.jobs.queue import connect_redis
        from trad.store.jobs import get_job, list_jobs

        with self.db.connection() as conn:
            running, _ = list_jobs(conn, status="running", limit=500)
        ids = {r["id"] for r in running if r["worker_name"] == self.worker_name} | {self.job_id} - {None}
        redis = connect_redis(self.settings)
        for job_id in ids:
            try:
                stop_job(self.db, redis, self.settings, job_id)
            except (Conflict, NotFound):
                pass  # it has ended already
        deadline = time.monotonic() + timeout
        while ids and time.monotonic() < deadline:
            with self.db.connection() as conn:
                ids = {i for i in ids if (get_job(conn, i) or {}).get("status") in ("queued", "running")}
            time.sleep(0.2)


def wait_for_web(url: str, token: str | None, web: Child, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until the web app answers /api/v1/health (200 or 503 both mean it is serving)."""
    request = urllib.request.Request(f"{url}/api/v1/health",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise ServiceUnavailable(f"the web app exited at start (status {web.process.returncode}); "
                             f"last lines of {web.log_path}:\n{web.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise ServiceUnavailable(f"the web app did not answer within {timeout:.0f} s; see {web.log_path}")


def run_demo(data_dir: Path, host: str, port: int, quick: bool, settings: Settings) -> int:
    """Run the demo until a signal; 0 after a clean stop, 1 if something failed to start or died."""
    data_dir = data_dir.expanduser().resolve()
    check_port_free(host, port)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    lock = lock_data_dir(data_dir)
    demo = Demo(data_dir, host, port, quick, settings)
    previous = {s: signal.signal(s, demo.signals) for s in STOP_SIGNALS}
    try:
        demo.start()
        demo.announce()
        return demo.wait()
    except DemoStopped:
        return 0
    finally:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        say("\nstopping the demo …")
        demo.stop()
        say("stopped")
        for s, handler in previous.items():
            signal.signal(s, handler)
        lock.close()
