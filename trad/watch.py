"""`trad watch JOB_ID`: a live terminal view of one training job, fed by its SSE stream.

Bars for the whole job, the current step, the episodes and the candles of the running
backtest, with the best score and the ETA (counted down from the row's `estimated_completion`,
as the dashboard does); returns when the job reaches its end. Nothing
is drawn before the first row arrives, so a watch that cannot start prints one line.

Once the stream has started, a dropped connection (the web server restarting) is retried
every RETRY_SECONDS with the last event id, so no change is missed, for up to
`reconnect_for` seconds (15 by default); an `event: reset` (the server says the client fell
too far behind) reconnects at once without it, which sends the job's current row.

Exit codes (the `WatchError` codes are also in `trad watch --help` and the README):
0 succeeded, 1 failed, 3 stopped — the job's end; 2 a usage error; NO_SUCH_JOB (4) the job
does not exist or was deleted; TOKEN_REFUSED (5) the web app refused the token (401);
NOT_ANSWERING (6) the web app did not answer at the start (connection refused, no answer
within CONNECT_TIMEOUT, or an error status); STREAM_LOST (7) the stream dropped and did
not come back within `reconnect_for`.
"""

from __future__ import annotations

import http.client
import json
import time
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
from rich.text import Text

from trad.training.forecast import format_eta

EXIT_CODES = {"succeeded": 0, "failed": 1, "stopped": 3}
NO_SUCH_JOB, TOKEN_REFUSED, NOT_ANSWERING, STREAM_LOST = 4, 5, 6, 7
TERMINAL = frozenset(EXIT_CODES)
CONNECT_TIMEOUT = 5.0  # seconds for the connection and the response's headers
READ_TIMEOUT = 45.0  # between two reads of a stream: the server sends a keepalive every 15 s
RETRY_SECONDS = 1.0
RECONNECT_FOR = 15.0


class WatchError(Exception):
    """The watch cannot go on: one line for the user and the exit code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code, self.message = exit_code, message


class _Dropped(Exception):
    """The stream went away (or never came back): try again until the grace runs out."""


def iter_job_rows(base_url: str, job_id: int, token: str | None = None,
                  reconnect_for: float = RECONNECT_FOR) -> Iterator[dict[str, Any]]:
    """Rows of the job as they change, up to its terminal one; raises WatchError."""
    last_event_id: str | None = None
    started, dropped_since = False, None
    while True:
        try:
            with _open_stream(base_url, job_id, token, last_event_id, first=not started) as response:
                started, dropped_since = True, None
                for kind, event_id, data in _sse_events(response):
                    last_event_id = event_id or last_event_id
                    if kind == "job":
                        row = json.loads(data)
                        yield row
                        if row.get("status") in TERMINAL:
                            return
                    elif kind == "deleted":
                        raise WatchError(NO_SUCH_JOB, f"job {job_id} was deleted")
                    elif kind == "reset":
                        last_event_id = None
                        break
                else:
                    raise _Dropped("the server ended the stream before the job ended")
                continue  # reset: reconnect at once
        except _Dropped as exc:
            reason = str(exc)
        except (OSError, http.client.HTTPException) as exc:
            reason = _reason(exc)
        dropped_since = dropped_since or time.monotonic()
        if time.monotonic() - dropped_since >= reconnect_for:
            raise WatchError(STREAM_LOST, f"the stream of job {job_id} from {base_url} dropped ({reason}) and did not "
                                          f"come back within {reconnect_for:g} s")
        time.sleep(RETRY_SECONDS)


def _open_stream(base_url: str, job_id: int, token: str | None, last_event_id: str | None,
                 first: bool) -> http.client.HTTPResponse:
    """The job's stream, answering 200; WatchError for what retrying cannot mend, _Dropped otherwise."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WatchError(NOT_ANSWERING, f"{base_url!r} is not an http:// or https:// URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT)
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    try:
        connection.connect()
        sock = connection.sock  # the response keeps reading from it, and may take it from the connection
        connection.request("GET", f"{parts.path.rstrip('/')}/api/v1/training-jobs/{job_id}/stream", headers=headers)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        if first:
            raise WatchError(NOT_ANSWERING, f"the web app at {base_url} does not answer ({_reason(exc)})") from None
        raise _Dropped(_reason(exc)) from None
    if response.status == 200:
        sock.settimeout(READ_TIMEOUT)
        return response
    message = _error_message(response)
    connection.close()
    if response.status == 404:
        raise WatchError(NO_SUCH_JOB, f"job {job_id} does not exist at {base_url}")
    if response.status in (401, 403):
        hint = "check TRAD_API_TOKEN" if token else "set TRAD_API_TOKEN"
        raise WatchError(TOKEN_REFUSED, f"the web app at {base_url} refused the request ({message}); {hint}")
    if first:
        raise WatchError(NOT_ANSWERING, f"the web app at {base_url} answered {response.status}: {message}")
    raise _Dropped(f"{response.status}: {message}")


def _error_message(response: http.client.HTTPResponse) -> str:
    """The message of an error response in the API's error shape, else its reason phrase."""
    try:
        return str(json.loads(response.read(65536))["error"]["message"])
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        return response.reason or "error"


def _reason(exc: BaseException) -> str:
    """An exception as a few words (socket errors carry their strerror)."""
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _sse_events(response: Any) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) of each event in a text/event-stream response."""
    kind, event_id, data = "message", None, []
    for raw in _lines_as_they_arrive(response):
        line = raw.decode("utf-8").rstrip("\r")
        if not line:
            if data or kind != "message":
                yield kind, event_id, "\n".join(data)
            kind, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


def _lines_as_they_arrive(response: Any) -> Iterator[bytes]:
    """Lines of a streaming response as soon as each arrives (plain iteration waits for a full buffer)."""
    pending = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines


def seconds_left(row: dict[str, Any], now: datetime | None = None) -> float | None:
    """The row's ETA now: counted down from `estimated_completion`, else `eta_seconds` (as the dashboard)."""
    if row.get("status") != "running":
        return None
    if row.get("estimated_completion"):
        completion = datetime.fromisoformat(str(row["estimated_completion"]).replace("Z", "+00:00"))
        return max(0.0, (completion - (now or datetime.now(timezone.utc))).total_seconds())
    return row.get("eta_seconds")


class EtaColumn(ProgressColumn):
    """`ETA 3 min 20 s` for the job's bar, counted down between rows; empty for the other bars."""

    def render(self, task: Any) -> Text:
        if "row" not in task.fields:
            return Text("")
        left = seconds_left(task.fields["row"])
        return Text("ETA –" if left is None else f"ETA {format_eta(left)}")


def _score(value: Any) -> str:
    return "–" if value is None else f"{value:,.4f}"


def watch_job(base_url: str, job_id: int, token: str | None = None, console: Console | None = None,
              reconnect_for: float = RECONNECT_FOR) -> int:
    """Show the job live until it ends; returns its exit code (0 succeeded, 1 failed, 3 stopped).

    Raises WatchError (before drawing anything when the stream cannot start)."""
    console = console or Console()
    rows = iter_job_rows(base_url, job_id, token, reconnect_for)
    row = next(rows)
    columns = (TextColumn("{task.description:<22}"), BarColumn(bar_width=None), TaskProgressColumn(),
               TextColumn("{task.fields[note]}"), EtaColumn())
    with Progress(*columns, console=console, transient=False, refresh_per_second=8) as progress:
        bars = [progress.add_task(name, total=100, note="") for name in ("job", "step", "episodes", "candles")]
        _draw(progress, bars, job_id, row)
        for row in rows:
            _draw(progress, bars, job_id, row)
    status = row.get("status", "unknown")
    console.print(f"job {job_id} {status}" + (f": {row['error_message']}" if row.get("error_message") else "")
                  + (f" — best {_score(row.get('best_score'))} with {row.get('best_params')}"
                     if row.get("best_params") else ""))
    return EXIT_CODES.get(status, 1)


def _draw(progress: Progress, bars: list[Any], job_id: int, row: dict[str, Any]) -> None:
    """One row onto the four bars: job, step, episodes, candles."""
    overall, step, episodes, candles = bars
    progress.update(overall, completed=row["progress"], description=f"job {job_id} {row['status']}",
                    note=f"best {_score(row['best_score'])} ", row=row)
    progress.update(step, completed=row["step_percentage"],
                    description=f"{row['step_number']}/{row['total_steps']} {row['current_stage'] or ''}"[:22])
    progress.update(episodes, total=max(1, row["total_episodes"] or 1), completed=row["current_episode"] or 0,
                    note=f"episode {row['current_episode'] or 0:,}/{row['total_episodes'] or 0:,}")
    progress.update(candles, total=max(1, row["total_candles"] or 1), completed=row["candles_processed"] or 0,
                    note=f"{row['candles_processed'] or 0:,}/{row['total_candles'] or 0:,} "
                         f"{row['backtest_stage'] or ''}")
