"""The WebSocket job feed: the changes the SSE streams carry, from the same per-process listener,
as JSON text messages.

    GET /api/v1/training-jobs/ws?status=&batch_id=    every job (or those of a status, a batch)
    GET /api/v1/training-jobs/<id>/ws                  one job; closed after its terminal state

Server → client: `{"type": "connected", "version": V}` first (the changes up to version V are in
what follows it, later ones arrive live); then the snapshot the SSE stream starts with (one
job's own feed: its newest row), each as `{"type": "job", "version": v, "job": <row>}`; then
every change as it commits: `job`, or `{"type": "deleted", "version": v, "id": …}`.
`{"type": "reset", "version": v, "reason": …}` when the client fell more than 1,000 jobs
behind, or asked to resume from further back than the server keeps: reload by REST, carry on.
Client → server: `{"type": "ping"}` is answered `{"type": "pong"}`; `{"type": "resume",
"after": v}` replays the newest state of every job changed after version v, deletions included
(as Last-Event-ID does), or a reset. Anything else is answered `{"type": "error", …}`.
The server sends a WebSocket ping every `TRAD_WS_PING_INTERVAL` seconds (15) and closes (1008)
a client that has not answered the previous one; a job's own feed closes (1000) after the
job's terminal state or deletion.

The token rules are the SSE streams' (header, `?token=`, cookie). A browser sends the cookie
with a WebSocket from any page, and WebSockets know no CORS: a handshake naming another origin
(`Origin`, `Sec-Fetch-Site`) is refused with 403 (trad.api.hooks).

One greenlet writes (this request's) and one reads the client's frames (see FeedSession). The
listener writes a change to an idle client's socket itself, framed once per process, in one
`writev` — as for SSE (trad.api.events.Subscription).
"""

from __future__ import annotations

import json
import socket
import time
from collections import deque
from typing import Any, Callable, Iterator

from flask import Blueprint, Response, request

from trad.api.broadcaster import Broadcaster
from trad.api.errors import RequestError
from trad.api.events import JobEvent, Subscription
from trad.api.services import services
from trad.api.stream import stream_filters, subscribe_to_job
from trad.errors import NotFound, ServiceUnavailable
from trad.api.websocket import (BINARY, CLOSE, NORMAL, PING, POLICY, PONG, TEXT, UNAVAILABLE, UNSUPPORTED,
                                FrameReader, ProtocolError, accept_key, close_frame, frame, frame_header,
                                handshake_problem)

RECEIVE_BYTES = 4096
CLOSE_WAIT_SECONDS = 2.0  # for the client's close frame after ours
FRAME_CACHE = 4096

feed_blueprint = Blueprint("feed", __name__)


def feed_route(rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """The route of a feed: for WebSocket handshakes, and for plain GETs (answered 426 by the view)."""
    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        for websocket in (True, False):
            feed_blueprint.add_url_rule(rule, view.__name__, view, methods=["GET"], websocket=websocket)
        return view
    return register


@feed_route("/api/v1/training-jobs/ws")
def feed_all_jobs() -> Response:
    """Every job change (optionally only one status or one batch) over a WebSocket."""
    status, batch_id = stream_filters()
    client = _handshake()
    broadcaster = services().broadcaster
    subscription = FeedSubscription(status=status, batch_id=batch_id)
    return _upgraded(FeedSession(broadcaster, client, subscription, broadcaster.subscribe(subscription)))


@feed_route("/api/v1/training-jobs/<int:job_id>/ws")
def feed_one_job(job_id: int) -> Response:
    """One job's changes over a WebSocket, closed after its terminal state."""
    client = _handshake()
    svc = services()
    subscription = FeedSubscription(job_id=job_id)
    newest = subscribe_to_job(svc.broadcaster, svc.db, subscription)
    return _upgraded(FeedSession(svc.broadcaster, client, subscription, [newest]))


def _handshake() -> socket.socket:
    """The client's socket, once the request is a WebSocket handshake this server can take over."""
    problem = handshake_problem(request.method, request.headers)
    if problem is not None:
        status, message = problem
        headers = {"Upgrade": "websocket", "Sec-WebSocket-Version": "13"} if status == 426 else None
        raise RequestError(status, "UPGRADE_REQUIRED" if status == 426 else "BAD_REQUEST", message, headers=headers)
    client = request.environ.get("gunicorn.socket")
    if client is None:
        raise RequestError(501, "NOT_IMPLEMENTED", "WebSockets are served by `trad serve` (gunicorn with gevent)")
    return client


class Upgraded(Response):
    """A 101 response whose body runs the session: werkzeug sends no body with a 1xx status, so
    the iterator is handed to the server as it is (gunicorn writes the head at its first item)."""

    def get_app_iter(self, environ: dict[str, Any]) -> Iterator[bytes]:
        return self.response  # type: ignore[return-value]


def _upgraded(session: "FeedSession") -> Response:
    response = Upgraded(session.run(), status=101, headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_key(request.headers["Sec-WebSocket-Key"])})
    response.headers.remove("Content-Type")
    response.call_on_close(session.unsubscribe)  # also when the session never ran
    return response


_frames: dict[int, tuple[JobEvent, bytes]] = {}


def feed_frame(event: JobEvent) -> bytes:
    """The event's message as a WebSocket text frame, built once per process however many clients
    it goes to (kept for the FRAME_CACHE newest events; the event itself is the key's guard)."""
    cached = _frames.get(id(event))
    if cached is not None and cached[0] is event:
        return cached[1]
    data = event.message[event.message.index(b"\ndata: ") + 7:-2]  # the JSON of the SSE message
    if event.kind == "job":
        payload = b'{"type": "job", "version": %d, "job": %s}' % (event.version, data)
    elif event.kind == "deleted":
        payload = b'{"type": "deleted", "version": %d, "id": %d}' % (event.version, event.job_id)
    else:
        payload = b'{"type": "%s", %s' % (event.kind.encode(), data[1:])
    framed = frame_header(TEXT, len(payload)) + payload
    if len(_frames) >= FRAME_CACHE:
        _frames.clear()
    _frames[id(event)] = (event, framed)
    return framed


def message(kind: str, **fields: Any) -> bytes:
    """A feed message of the server's own (connected, pong, error) as a text frame."""
    return frame(TEXT, json.dumps({"type": kind, **fields}).encode())


class FeedSubscription(Subscription):
    """A subscription whose client reads WebSocket frames."""

    __slots__ = ()

    def wire_parts(self, events: list[JobEvent]) -> list[bytes]:
        return [feed_frame(e) for e in events]


class FeedSession:
    """One WebSocket client: the writer (the request's greenlet, `run`) and the reader (`_read`).

    Only the writer and, while the writer waits with everything sent, the listener write to the
    socket; the reader hands what the client sent to the writer (`inbox`, `breach`) and wakes it.
    """

    def __init__(self, broadcaster: Broadcaster, client: socket.socket, subscription: FeedSubscription,
                 first: list[JobEvent]) -> None:
        self.broadcaster, self.client, self.subscription, self.first = broadcaster, client, subscription, first
        self.ping_interval = services().settings.ws_ping_interval
        self.inbox: deque[tuple[int, bytes]] = deque()
        self.breach: ProtocolError | None = None
        self.client_gone = False
        self.ending: tuple[int, str] | None = None
        self.pong_at = self.ping_at = time.monotonic()

    def run(self) -> Iterator[bytes]:
        """The response body: b"" (the server sends the 101 head), then the session, then nothing."""
        yield b""
        try:
            spawn(self._read)
            self._serve()
            if not self.client_gone:
                self._close(*self.ending)
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.unsubscribe()
            _shut(self.client)

    def unsubscribe(self) -> None:
        self.broadcaster.unsubscribe(self.subscription)

    def _serve(self) -> None:
        """Send and answer until the session ends (`ending`, or the client gone)."""
        first, self.first = self.first, []
        self._send([message("connected", version=self.subscription.sent_version), *map(feed_frame, first)])
        self._end_after(first)
        # A job's own feed must see its terminal event to close: the listener writes only to the others.
        direct_fd = self.client.fileno() if self.subscription.job_id is None else None
        while self.ending is None:
            wait = max(0.0, self.ping_at + self.ping_interval - time.monotonic())
            parked = None if self.inbox or self.breach or self.client_gone else direct_fd
            subscription = self.subscription
            events = subscription.take(timeout=wait, direct_fd=parked)
            if subscription.broken or self.client_gone:
                return
            if subscription.unwritten:  # the rest of a direct write, already framed
                self.client.sendall(subscription.unwritten)
                subscription.unwritten = b""
            self._answer_client()
            if events and self.subscription is subscription:  # after a resume, its replay covers them
                for event in events:
                    subscription.mark_sent(event)
                self._send([feed_frame(e) for e in events])
                self._end_after(events)
            self._ping()

    def _end_after(self, events: list[JobEvent]) -> None:
        """A job's own feed ends after the job's terminal state or deletion."""
        if self.ending is None and self.subscription.job_id is not None and any(e.terminal for e in events):
            self.ending = NORMAL, "the job has ended"

    def _ping(self) -> None:
        """A ping every ping_interval; a client that did not answer the last one is closed."""
        if self.ending is not None or time.monotonic() < self.ping_at + self.ping_interval:
            return
        if self.pong_at < self.ping_at:
            self.ending = POLICY, f"no pong within {self.ping_interval:g} s"
            return
        self.ping_at = time.monotonic()
        self._send([frame(PING, b"trad")])

    def _answer_client(self) -> None:
        """Answer what the client sent, in order; a close, binary data or a breach ends the session."""
        while self.inbox and self.ending is None:
            opcode, payload = self.inbox.popleft()
            if opcode == PING:
                self._send([frame(PONG, payload)])
            elif opcode == CLOSE:
                self.ending = NORMAL, ""
            elif opcode == BINARY:
                self.ending = UNSUPPORTED, "the feed speaks JSON in text messages"
            else:
                self._answer_message(payload)
        if self.breach is not None and self.ending is None:
            self.ending = self.breach.code, self.breach.reason

    def _answer_message(self, payload: bytes) -> None:
        try:
            sent = json.loads(payload)
        except ValueError:
            sent = None
        kind = sent.get("type") if isinstance(sent, dict) else None
        if kind == "ping":
            self._send([message("pong")])
        elif kind == "resume" and type(sent.get("after")) is int and sent["after"] >= 0:
            self._resume(sent["after"])
        else:
            self._send([message("error", message='send {"type": "ping"} or {"type": "resume", "after": <version>}')])

    def _resume(self, after: int) -> None:
        """Replay what changed after version `after`, as a reconnect with Last-Event-ID does."""
        old = self.subscription
        self.unsubscribe()
        self.subscription = FeedSubscription(job_id=old.job_id, status=old.status, batch_id=old.batch_id,
                                             after_version=after)
        try:
            if old.job_id is None:
                replay = self.broadcaster.subscribe(self.subscription)
            else:  # the job's newest row, unless the client has it; a job that has ended ends its feed
                newest = subscribe_to_job(self.broadcaster, services().db, self.subscription)
                replay = [newest] if newest.version > after else []
                self._end_after([newest])
        except NotFound:
            self.ending = NORMAL, "the job no longer exists"
            return
        except ServiceUnavailable as exc:
            self.ending = UNAVAILABLE, exc.message[:120]
            return
        self._send([feed_frame(e) for e in replay])

    def _send(self, frames: list[bytes]) -> None:
        if frames:
            self.client.sendall(b"".join(frames))

    def _read(self) -> None:
        """The reader: the client's frames into the inbox (pongs noted here), a wake-up for each read."""
        reader = FrameReader()
        try:
            while True:
                data = self.client.recv(RECEIVE_BYTES)
                if not data:
                    break
                for opcode, payload in reader.feed(data):
                    if opcode == PONG:
                        self.pong_at = time.monotonic()
                    else:
                        self.inbox.append((opcode, payload))
                self.subscription.nudge()
        except ProtocolError as breach:
            self.breach = breach
        except OSError:
            pass
        self.client_gone = self.breach is None
        self.subscription.nudge()

    def _close(self, code: int, reason: str) -> None:
        """Send our close frame, then wait briefly for the client to end the connection."""
        self._send([close_frame(code, reason)])
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while not self.client_gone and time.monotonic() < deadline:
            self.subscription.take(timeout=deadline - time.monotonic())


def spawn(function: Any) -> None:
    """Run `function` beside the request: a greenlet under gunicorn's gevent worker (~2 kB, where a
    monkey-patched thread costs ~20 kB), imported only where a feed runs."""
    from gevent import spawn as spawn_greenlet

    spawn_greenlet(function)


def _shut(client: socket.socket) -> None:
    """End the connection, so the server reads no further request from it."""
    try:
        client.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
