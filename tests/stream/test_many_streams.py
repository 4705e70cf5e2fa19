"""More than 1,023 streams on one `trad serve` process: every one stays open and gets each change.

Descriptors above 1023 are where select() fails; a web process holding this many streams has
them for its client sockets and for any database connection it opens meanwhile.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import time

import pytest

from trad.api.stream import CLIENT_CHECK_SECONDS

STREAMS = 1100


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_until(selector: selectors.BaseSelector, received: dict, done, timeout: float) -> None:
    """Read whatever arrives on the registered sockets until `done(received)` or the timeout."""
    end = time.monotonic() + timeout
    while not done(received) and time.monotonic() < end:
        for key, _ in selector.select(timeout=0.2):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            received[key.fileobj] += data


@pytest.fixture
def descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * STREAMS + 200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the descriptor limit ({hard}) is too low for {STREAMS} streams")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def test_over_a_thousand_streams_stay_open_and_each_gets_every_change(descriptors, start_web, make_job, db,
                                                                       clean_db):
    web = start_web()
    worker = int(subprocess.run(["pgrep", "-P", str(web.process.pid)], capture_output=True,
                                text=True).stdout.split()[0])
    job = make_job()
    selector = selectors.DefaultSelector()
    clients = []
    try:
        for _ in range(STREAMS):
            client = socket.create_connection(("127.0.0.1", web.port))
            client.sendall(b"GET /api/v1/training-jobs/stream HTTP/1.1\r\nHost: test\r\n"
                           b"Accept: text/event-stream\r\n\r\n")
            client.setblocking(False)
            selector.register(client, selectors.EVENT_READ)
            clients.append(client)
        received = {client: b"" for client in clients}
        read_until(selector, received, lambda r: all(b"retry:" in data for data in r.values()), 60)
        assert all(b"retry:" in data for data in received.values())
        assert open_descriptors(worker) > STREAMS

        time.sleep(CLIENT_CHECK_SECONDS + 1.5)  # every stream has checked its client at least once
        with db.cursor() as cur:
            cur.execute("UPDATE training_jobs SET job_name = 'seen by all' WHERE id = %s RETURNING version",
                        (job["id"],))
            marker = b"id: %d\n" % cur.fetchone()["version"]
        read_until(selector, received, lambda r: all(marker in data for data in r.values()), 30)
        missing = sum(1 for data in received.values() if marker not in data)
        assert missing == 0, f"{missing} of {STREAMS} streams did not get the change"

        before = open_descriptors(worker)
        for client in clients[:600]:
            selector.unregister(client)
            client.close()
        end = time.monotonic() + CLIENT_CHECK_SECONDS + 10
        while open_descriptors(worker) > before - 590 and time.monotonic() < end:
            time.sleep(0.2)
        assert open_descriptors(worker) <= before - 590, "closed streams were not let go"
    finally:
        for client in clients:
            client.close()
        selector.close()
