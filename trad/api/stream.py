"""Server-Sent Events: every training_jobs change, pushed as it commits, replayed on reconnect.

    GET /api/v1/training-jobs/stream?status=&batch_id=     every job (or those of a status, a batch)
    GET /api/v1/training-jobs/<id>/stream                   one job; ends after its terminal state

First `retry: 3000`, then, each message `id: <version>`, `event: <kind>`, `data: <JSON>`:
- a fresh stream (no Last-Event-ID): a snapshot — every unfinished job and the 20 most
  recently changed others that the filter shows, at most 500, in version order, as
  `event: job` with the row;
- a reconnect (`Last-Event-ID` header, or `?last_event_id=`): every row (`event: job`) and
  deletion (`event: deleted`, data `{"id"}`) changed after that version, newest state per job,
  in version order. A filtered stream is sent every changed row, so a job that left the filter
  meanwhile arrives too; the client drops what is not its business. When the replay could not
  be complete — the id is older than the ~1,000 most recent job changes the server keeps, or
  than the newest tombstone `trad cleanup` pruned, or is one this database never issued — it
  is one `event: reset` instead: `id: <version>`, data `{"version": <version>, "reason":
  "history" | "unknown" | "backlog"}`. The client reloads what it shows by REST and carries on:
  the stream continues with every change after that version, and a later reconnect resumes
  from it. A stream whose client fell more than 1,000 jobs behind gets a reset too ("backlog").
- then each change as it commits: `event: job` or `event: deleted`. A filtered stream also gets
  the change that takes a job out of its filter (a running job that succeeds, on
  `?status=running`), and the deletion of a job that was in it.

A job's own stream starts with the job's newest row (none if the client's Last-Event-ID is that
row's version), never resets, and ends after a terminal state (or the job's deletion).
`: keepalive` every 15 s.

Connecting costs no query (a job's own stream reads the one row when the process has not kept
it): the first events come from what the listener keeps (`trad.api.history`), serialised once.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Iterable, Iterator

from flask import Blueprint, Response, request

from trad.api.broadcaster import NUDGE_SECONDS, Broadcaster
from trad.api.events import JobEvent, Subscription, job_event
from trad.api.services import services
from trad.db import Database, readable
from trad.errors import InvalidInput, NotFound
from trad.store.job_log import logged_job
from trad.store.jobs import STATUSES

KEEPALIVE_SECONDS = 15.0
CLIENT_CHECK_SECONDS = NUDGE_SECONDS
RETRY_MS = 3000
KEEPALIVE = b": keepalive\n\n"
PIECE_BYTES = 64 * 1024  # what one write hands the server at most (a replay goes in pieces)

stream_blueprint = Blueprint("stream", __name__)


def register_stream(app: Any) -> None:
    """Add the stream routes to an app; its listener (`Services.broadcaster`) starts with the first client."""
    app.register_blueprint(stream_blueprint)
    from trad.api.feed import feed_blueprint  # the WebSocket feed shares the listener

    app.register_blueprint(feed_blueprint)


def stream_filters() -> tuple[str | None, int | None]:
    """The all-jobs stream's `status` and `batch_id` query parameters, checked."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidInput.field("status", f"must be one of {', '.join(STATUSES)}")
    return status, _optional_int("batch_id", request.args.get("batch_id"))


@stream_blueprint.get("/api/v1/training-jobs/stream")
def stream_all_jobs() -> Response:
    """Every job row change (optionally only one status or one batch)."""
    status, batch_id = stream_filters()
    subscription = Subscription(status=status, batch_id=batch_id, after_version=_last_event_id())
    return _stream(subscription, services().broadcaster.subscribe(subscription))


@stream_blueprint.get("/api/v1/training-jobs/<int:job_id>/stream")
def stream_one_job(job_id: int) -> Response:
    """One job's changes; the stream ends after it reaches succeeded, failed or stopped."""
    svc = services()
    subscription = Subscription(job_id=job_id, after_version=_last_event_id())
    newest = subscribe_to_job(svc.broadcaster, svc.db, subscription)
    first = [] if newest.version == subscription.after_version else [newest]
    return _stream(subscription, first, ends_when_done=True, ends_at_once=not first and newest.terminal)


def subscribe_to_job(broadcaster: Broadcaster, db: Database, subscription: Subscription) -> JobEvent:
    """Join the fan-out for one job; returns the job's newest event (NotFound when it does not exist)."""
    try:
        newest = (broadcaster.subscribe(subscription) or [_read_job(broadcaster, db, subscription.job_id)])[0]
    except BaseException:
        broadcaster.unsubscribe(subscription)
        raise
    subscription.sent_version = max(subscription.sent_version, newest.version)
    return newest


def _read_job(broadcaster: Broadcaster, db: Database, job_id: int) -> JobEvent:
    """The job's row as an event, read after subscribing (so no change in between is missed)."""
    with db.connection() as conn:
        row = logged_job(conn, job_id)
    if row is None:
        raise NotFound(f"training job {job_id} does not exist")
    return job_event(row, None, broadcaster.row_text)


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


def _stream(subscription: Subscription, first: list[JobEvent], ends_when_done: bool = False,
            ends_at_once: bool = False) -> Response:
    broadcaster = services().broadcaster
    if ends_at_once:
        body = _ended(broadcaster, subscription)
    else:
        client = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
        direct_fd = None if ends_when_done else _direct_fd(request.environ)
        body = _events(broadcaster, subscription, first, client, ends_when_done, direct_fd)
    response = Response(body, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"})
    response.call_on_close(lambda: broadcaster.unsubscribe(subscription))  # also when never iterated
    return response


def _ended(broadcaster: Broadcaster, subscription: Subscription) -> Iterator[bytes]:
    """A job's stream whose client already has the job's terminal row: nothing more will come."""
    broadcaster.unsubscribe(subscription)
    yield f"retry: {RETRY_MS}\n\n".encode()


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


def _events(broadcaster: Broadcaster, subscription: Subscription, first: list[JobEvent],
            client: socket.socket | None, ends_when_done: bool, direct_fd: int | None = None) -> Iterator[bytes]:
    """The response body; the subscription is dropped when the client goes or the job ends.

    What one wake-up brings is written in pieces of at most PIECE_BYTES (the messages are
    shared by every stream; a piece is this stream's only copy); whether the client is still
    there is checked only while the stream is idle, when the broadcaster nudges it (every
    CLIENT_CHECK_SECONDS); a write to a closed socket ends it otherwise. While it waits, the
    listener may write events to `direct_fd` itself (see `Subscription`): everything yielded
    before has been written by then, since the server asks for the next piece only after
    writing the last.
    """
    try:
        yield from _pieces(first, f"retry: {RETRY_MS}\n\n".encode())
        if ends_when_done and any(e.terminal for e in first):
            return
        first = []  # not kept for the life of the stream
        last_write = time.monotonic()
        while True:
            events = subscription.take(direct_fd=direct_fd)
            if subscription.broken:
                return
            if subscription.unwritten:  # the rest of a direct write, already framed
                client.sendall(subscription.unwritten)
                subscription.unwritten = b""
            if events:
                for event in events:
                    subscription.mark_sent(event)
                yield from _pieces(events)
                last_write = time.monotonic()
                if ends_when_done and any(e.terminal for e in events):
                    return
            elif _client_gone(client):
                return
            elif time.monotonic() - max(last_write, subscription.written_at) >= KEEPALIVE_SECONDS:
                yield KEEPALIVE
                last_write = time.monotonic()
    finally:
        broadcaster.unsubscribe(subscription)


def _pieces(events: Iterable[JobEvent], head: bytes = b"") -> Iterator[bytes]:
    """The events' messages (after `head`) joined into pieces of about PIECE_BYTES, then b"":
    the server's loops (gunicorn's, werkzeug's) hold the last piece yielded until the next one,
    which for a parked stream is its whole life (~66 kB a stream, measured, for a 20-row snapshot)."""
    parts, size = ([head], len(head)) if head else ([], 0)
    for event in events:
        parts.append(event.message)
        size += len(event.message)
        if size >= PIECE_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)
    yield b""


def _client_gone(client: socket.socket | None) -> bool:
    """True when the client closed its connection (its socket reads end-of-file)."""
    if client is None:
        return False
    try:
        return readable(client, 0) and client.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
