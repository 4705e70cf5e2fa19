"""The tests are guests on the machine's PostgreSQL and Redis: they never stop, restart, flush or
reconfigure them. A test that needs a server down uses private ones (tests/private_services.py,
the only module allowed such calls); the grep below holds every other file of the test tree to
that, and the witness (tests/witness.py) checks the shared servers at the end of every session.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from pathlib import Path

import pytest

from tests import witness
from tests.conftest import ADMIN_URL, REDIS_URL
from trad.jobs.queue import forget_tagged_keys

TESTS = Path(__file__).resolve().parent
# The helper that owns private servers, and this file (its patterns and samples).
ALLOWED = {TESTS / "private_services.py", TESTS / "test_guest.py"}

SERVER_CONTROL = {
    "FLUSHALL/FLUSHDB by a Redis client": r"\.flush(?:all|db)\s*\(",
    "SHUTDOWN by a Redis client": (r"(?<!executor)(?<!pool)(?<!server)\.shutdown\s*\("
                                   r"(?!\s*(?:socket\s*\.\s*)?SHUT_(?:RDWR|RD|WR)\b)(?!\s*(?:wait|cancel_futures)\s*=)"),
    "FLUSHALL/FLUSHDB/SHUTDOWN as a command word": r"""(?i)["'](?:flushall|flushdb|shutdown)["']""",
    "SHUTDOWN SAVE/NOSAVE in a command": r"(?i)\bshutdown\s+(?:no)?save\b",
    "CONFIG SET": r"""(?i)\bconfig[\s"',]+set\b""",
    "CONFIG SET/REWRITE by a Redis client": r"\.config_(?:set|rewrite)\s*\(",
    "pg_ctl or pg_ctlcluster": r"\bpg_ctl(?:cluster)?\b",
    "PostgreSQL reconfigured": r"(?i)\balter\s+system\b|\bpg_reload_conf\b",
    "redis-server started by hand": r"""["']redis-server["']|\bredis-server\s+-""",
    "redis-cli with a server command": r"(?i)\bredis-cli\b[^\n]*\b(?:shutdown|flushall|flushdb|config|replicaof|slaveof)\b",
    "a service manager driving a server": (r"(?i)\b(?:systemctl|service)\b[^\n]*\b(?:start|stop|restart|reload)\b"
                                           r"[^\n]*\b(?:postgres|redis)"),
    "processes signalled by name": r"\b(?:pkill|killall)\b",
}


def code_of(source: str) -> str:
    """The source with comments and docstrings (bare string statements) blanked; lines kept."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type != tokenize.NL]
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    text = list(source)
    for i, token in enumerate(tokens):
        bare_string = (token.type == tokenize.STRING
                       and (i == 0 or tokens[i - 1].type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                                                             tokenize.COMMENT, tokenize.ENCODING))
                       and i + 1 < len(tokens) and tokens[i + 1].type in (tokenize.NEWLINE, tokenize.ENDMARKER))
        if token.type == tokenize.COMMENT or bare_string:
            start = line_starts[token.start[0] - 1] + token.start[1]
            end = line_starts[token.end[0] - 1] + token.end[1]
            text[start:end] = [c if c == "\n" else " " for c in text[start:end]]
    return "".join(text)


def server_control(source: str) -> list[tuple[int, str]]:
    """(line, what) of every call in the source that stops, restarts, flushes or reconfigures a server."""
    code = code_of(source)
    return sorted((code.count("\n", 0, match.start()) + 1, what) for what, pattern in SERVER_CONTROL.items()
                  for match in re.finditer(pattern, code))


OFFENDING = [
    "client.flushall()",
    "redis.flushdb(asynchronous=True)",
    'client.execute_command("FLUSHALL")',
    'subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=True)',
    'subprocess.run("redis-cli -p 6379 flushall", shell=True)',
    "client.shutdown(nosave=True)",
    "redis_lib.Redis.from_url(url).shutdown()",
    'client.execute_command("SHUTDOWN", "NOSAVE")',
    'client.config_set("save", "")',
    'client.execute_command("CONFIG", "SET", "maxmemory", "1mb")',
    'client.execute_command(\n    "config",\n    "set", "appendonly", "no")',
    'client.execute_command("config set appendonly no")',
    'subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"], check=True)',
    'subprocess.run([bin / "pg_ctl", "-D", data, "-m", "fast", "stop"])',
    'cur.execute("ALTER SYSTEM SET max_connections = 5")',
    'cur.execute("SELECT pg_reload_conf()")',
    'subprocess.run(["systemctl", "restart", "postgresql"])',
    'subprocess.run(["redis-server", "--port", "6379", "--save", ""])',
    'subprocess.run(["pkill", "-f", "redis-server"])',
]

INNOCENT = [
    "self.connection.sock.shutdown(socket.SHUT_RDWR)",
    "sock.shutdown(SHUT_WR)",
    "executor.shutdown(wait=True)",
    "server.shutdown()  # an http.server the test started",
    "os.killpg(web.process.pid, signal.SIGTERM)  # a deploy: SIGTERM, gunicorn's graceful shutdown",
    "# Redis loses everything it held for these jobs (what FLUSHALL does to them).",
    'def restart():\n    """Restarted with pg_ctl, shut down with SHUTDOWN NOSAVE, FLUSHALL, CONFIG SET."""\n    return 1',
    'log.info("warm shutdown: the running job finishes")',
    "config, settings = load()",
    "assert redis_client.delete(*lost) == 4",
    'cur.execute("SELECT pg_postmaster_start_time()")',
    'run_id = client.info("server")["run_id"]',
    'saving = client.config_get("save")',
    'keys = list(client.scan_iter(match=f"{settings.redis_prefix}*"))',
    "with private_services.redis_lost(down_seconds=4):\n    pass",
    "seconds = private_services.restart_postgresql()",
]


@pytest.mark.parametrize("line", OFFENDING)
def test_the_patterns_catch_each_way_of_controlling_a_server(line):
    assert server_control(line), f"not caught: {line}"


@pytest.mark.parametrize("line", INNOCENT)
def test_the_patterns_leave_innocent_code_alone(line):
    assert server_control(line) == []


def test_no_test_stops_restarts_flushes_or_reconfigures_a_server_outside_the_private_helper():
    files = sorted(p for p in TESTS.rglob("*.py") if p not in ALLOWED and "__pycache__" not in p.parts)
    assert TESTS / "reliability" / "test_faults.py" in files  # the scan reaches the fault tests
    found = [f"{path.relative_to(TESTS.parent)}:{line}: {what}"
             for path in files for line, what in server_control(path.read_text(encoding="utf-8"))]
    assert found == [], "use tests/private_services.py for these:\n" + "\n".join(found)


@pytest.mark.slow
def test_a_session_forgets_its_queues_and_their_jobs_and_nothing_else():
    """What a session's cleanup deletes from the shared Redis: its queues' names, registries, jobs
    and results (RQ job ids carry no tag: found by origin) — and a job of another origin stays."""
    import uuid

    import redis as redis_lib
    from rq import Queue, SimpleWorker

    tag, other = f"trad-test-{uuid.uuid4().hex[:10]}", f"guest-check-{uuid.uuid4().hex[:10]}"
    client = redis_lib.Redis.from_url(REDIS_URL)
    try:
        ours, theirs = Queue(f"{tag}-backtests", connection=client), Queue(f"{other}-work", connection=client)
        done = ours.enqueue("os.getpid")
        kept = theirs.enqueue("os.getpid")
        SimpleWorker([ours], connection=client, name=f"{tag}-worker").work(burst=True)
        assert done.get_status(refresh=True) == "finished" and client.exists(f"rq:results:{done.id}")

        forget_tagged_keys(client, tag)

        assert [k for k in client.scan_iter(match=f"*{tag}*", count=1000)] == []
        assert not client.exists(f"rq:job:{done.id}", f"rq:results:{done.id}")
        assert not any(tag in name.decode() for name in client.smembers("rq:queues"))
        assert client.hget(f"rq:job:{kept.id}", "origin") == theirs.name.encode()
        assert theirs.key.encode() in client.smembers("rq:queues")
    finally:
        forget_tagged_keys(client, tag)
        forget_tagged_keys(client, other)
        client.close()


def test_the_witness_sees_each_server_restarted_and_the_key_lost(private_services):
    settings = private_services.settings
    planted = witness.plant(settings.redis_url, settings.database_url)
    assert planted.error == "" and witness.changes(planted, settings.redis_url, settings.database_url) == []
    private_services.restart_postgresql()
    with private_services.redis_lost(down_seconds=0):
        pass
    assert witness.changes(planted, settings.redis_url, settings.database_url) == [
        "another application's key in Redis was deleted or changed (now None)",
        "Redis was restarted (its run_id changed)",
        "PostgreSQL was restarted (pg_postmaster_start_time() changed)"]


@pytest.mark.last
def test_the_shared_servers_are_as_the_session_found_them(request):
    planted = request.config.stash.get(witness.PLANTED, None)
    assert planted is not None, "tests/conftest.py did not plant the witness at session start"
    if planted.error:
        message = f"the shared servers could not be read at session start: {planted.error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert witness.changes(planted, REDIS_URL, ADMIN_URL) == []
