"""Server-Sent Events: every training_jobs change, pushed as it commits, replayed on reconnect.

    GET /api/v1/training-jobs/stream?status=&batch_id=     every job
    GET /api/v1/training-jobs/<id>/stream                   one job; ends after its terminal state

`retry: 3000` first; then the current rows (or, with `Last-Event-ID` — header or
`?last_event_id=` — every row and deletion with a higher version); then each change as
`id: <version>`, `event: job` (or `deleted`), `data: <row JSON>`; `: keepalive` every 15 s.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Iterator

from flask import Blueprint, Response, current_app, request

from trad.api.events import (NUDGE_SECONDS, SNAPSHOT_LIMIT, Broadcaster, JobEvent, Subscription,
                             read_changes)
from trad.db import Database, readable
from trad.errors import InvalidInput, NotFound
from trad.store.jobs import STATUSES, get_job

KEEPALIVE_SECONDS = 15.0
CLIENT_CHECK_SECONDS = NUDGE_SECONDS
RETRY_MS = 3000
KEEPALIVE = b": keepalive\n\n"
EXTENSION = "trad_stream"

stream_blueprint = Blueprint("stream", __name__)


def register_stream(app: Any, db: Database, database_url: str) -> Broadcaster:
    """Add the stream routes to an app; the listener starts with the first client."""
    broadcaster = Broadcaster(database_url)
    app.extensions[EXTENSION] = {"broadcaster": broadcaster, "db": db}
    app.register_blueprint(stream_blueprint)
    return broadcaster


def _parts() -> tuple[Broadcaster, Database]:
    parts = current_app.extensions[EXTENSION]
    return parts["broadcaster"], parts["db"]


@stream_blueprint.get("/api/v1/training-jobs/stream")
def stream_all_jobs() -> Response:
    """Every job row change (optionally only one status or one batch)."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput.field("status", f"must be one of {', '.join(STATUSES)}")
    batch_id = _optional_int("batch_id", request.args.get("batch_id"))
    return _stream(Subscription(status=status, batch_id=batch_id, after_version=_last_event_id()))


@stream_blueprint.get("/api/v1/training-jobs/<int:job_id>/stream")
def stream_one_job(job_id: int) -> Response:
    """One job's changes; the stream ends after it reaches succeeded, failed or stopped."""
    _, db = _parts()
    with db.connection() as conn:
        if get_job(conn, job_id) is None:
            raise NotFound(f"training job {job_id} does not exist")
    return _stream(Subscription(job_id=job_id, after_version=_last_event_id()), ends_when_done=True)


def _optional_int(name: str, raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput.field(name, f"{raw!r} is not an integer") from None
    if value < 0:
        raise InvalidInput.field(name, "must be >= 0")
    return value


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    return _optional_int("last_event_id", raw) or 0


def _stream(subscription: Subscription, ends_when_done: bool = False) -> Response:
    broadcaster, db = _parts()
    replay = subscription.sent_version > 0
    broadcaster.subscribe(subscription)  # before the snapshot: nothing committed after it is missed
    try:
        with db.connection() as conn:
            snapshot = read_changes(conn, subscription.sent_version, subscription.job_id, subscription.status,
                                    subscription.batch_id, limit=None if replay else SNAPSHOT_LIMIT)
    except BaseException:
        broadcaster.unsubscribe(subscription)
        raise
    client = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    direct_fd = None if ends_when_done else _direct_fd(request.environ)
    body = _events(broadcaster, subscription, snapshot, client, ends_when_done, direct_fd)
    return Response(body, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"})


def _direct_fd(environ: dict[str, Any]) -> int | None:
    """The client socket's descriptor when the listener may write events to it directly: under
    gunicorn's gevent worker (a non-blocking socket, and a chunked body for HTTP/1.1)."""
    client = environ.get("gunicorn.socket")
    if client is None or environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
        return None
    try:
        fd = client.fileno()
        return fd if not os.get_blocking(fd) else None
    except (OSError, ValueError):
        return None


def _events(broadcaster: Broadcaster, subscription: Subscription, snapshot: list[JobEvent],
            client: socket.socket | None, ends_when_done: bool, direct_fd: int | None = None) -> Iterator[bytes]:
    """The response body; the subscription is dropped when the client goes or the job ends.

    What one wake-up brings is written in one piece; whether the client is still there is
    checked only while the stream is idle, when the broadcaster nudges it (every
    CLIENT_CHECK_SECONDS); a write to a closed socket ends it otherwise. While it waits,
    the listener may write events to `direct_fd` itself (see `Subscription`): everything
    yielded before has been written by then, since the server asks for the next piece only
    after writing the last.
    """
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        pending, last_write = snapshot, time.monotonic()
        while True:
            chunk, done = _unsent(subscription, pending, ends_when_done)
            if chunk:
                yield chunk
                last_write = time.monotonic()
            if done:
                return
            if not pending:
                if _client_gone(client):
                    return
                if time.monotonic() - max(last_write, subscription.written_at) >= KEEPALIVE_SECONDS:
                    yield KEEPALIVE
                    last_write = time.monotonic()
            pending = subscription.take(direct_fd=direct_fd)
            if subscription.broken:
                return
            if subscription.unwritten:  # the rest of a direct write, already framed
                client.sendall(subscription.unwritten)
                subscription.unwritten = b""
    finally:
        broadcaster.unsubscribe(subscription)


def _unsent(subscription: Subscription, events: list[JobEvent], ends_when_done: bool) -> tuple[bytes, bool]:
    """The events not yet sent, in one piece; True when the job's own stream is complete."""
    parts = []
    for event in events:
        if event.version <= subscription.sent_version:
            continue
        parts.append(event.encoded)
        subscription.mark_sent(event)
        if ends_when_done and event.terminal:
            return b"".join(parts), True
    return b"".join(parts), False


def _client_gone(client: socket.socket | None) -> bool:
    """True when the client closed its connection (its socket reads end-of-file)."""
    if client is None:
        return False
    try:
        return readable(client, 0) and client.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
