"""`trad watch JOB_ID`: a live terminal view of one training job, fed by its SSE stream.

Bars for the whole job, the current step, the episodes and the candles of the running
backtest, with the best score and the ETA. Reconnects by itself (resuming from the last
event id) when the web server restarts; returns when the job reaches its end.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

EXIT_CODES = {"succeeded": 0, "failed": 1, "stopped": 3}
READ_TIMEOUT = 45.0  # the server sends a keepalive every 15 s


def iter_job_rows(base_url: str, job_id: int, token: str | None = None,
                  retry_seconds: float = 3.0, give_up_after: float = 300.0) -> Iterator[dict[str, Any]]:
    """Rows of the job as they change, until its stream ends after a terminal state."""
    last_event_id, failing_since = None, None
    while True:
        request = urllib.request.Request(f"{base_url.rstrip('/')}/api/v1/training-jobs/{job_id}/stream",
                                         headers={"Accept": "text/event-stream"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if last_event_id:
            request.add_header("Last-Event-ID", last_event_id)
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT) as response:
                failing_since = None
                for kind, event_id, data in _sse_events(response):
                    last_event_id = event_id or last_event_id
                    if kind == "deleted":
                        return
                    if kind == "job":
                        yield json.loads(data)
                return  # the server ended the stream: the job is done
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise
            failing_since = failing_since or time.monotonic()
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
            failing_since = failing_since or time.monotonic()
        if time.monotonic() - failing_since > give_up_after:
            raise ConnectionError(f"the stream at {base_url} has not answered for {give_up_after:.0f} s")
        time.sleep(retry_seconds)


def _sse_events(response: Any) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) of each event in a text/event-stream response."""
    kind, event_id, data = "message", None, []
    for raw in _lines_as_they_arrive(response):
        line = raw.decode("utf-8").rstrip("\r")
        if not line:
            if data:
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


def _eta(row: dict[str, Any]) -> str:
    seconds = row.get("eta_seconds")
    if seconds is None:
        return "ETA –"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def _score(value: Any) -> str:
    return "–" if value is None else f"{value:,.4f}"


def watch_job(base_url: str, job_id: int, token: str | None = None, console: Console | None = None) -> int:
    """Show the job live until it ends; returns its exit code (0 succeeded, 1 failed, 3 stopped)."""
    console = console or Console()
    columns = (TextColumn("{task.description:<22}"), BarColumn(bar_width=None), TaskProgressColumn(),
               TextColumn("{task.fields[note]}"))
    row: dict[str, Any] = {}
    with Progress(*columns, console=console, transient=False, refresh_per_second=8) as progress:
        overall = progress.add_task("job", total=100, note="")
        step = progress.add_task("step", total=100, note="")
        episodes = progress.add_task("episodes", total=1, note="")
        candles = progress.add_task("candles", total=1, note="")
        for row in iter_job_rows(base_url, job_id, token):
            progress.update(overall, completed=row["progress"], description=f"job {job_id} {row['status']}",
                            note=f"best {_score(row['best_score'])}  {_eta(row)}")
            progress.update(step, completed=row["step_percentage"],
                            description=f"{row['step_number']}/{row['total_steps']} {row['current_stage'] or ''}"[:22])
            total = max(1, row["total_episodes"] or 1)
            progress.update(episodes, total=total, completed=row["current_episode"] or 0,
                            note=f"episode {row['current_episode']:,}/{row['total_episodes']:,}")
            progress.update(candles, total=max(1, row["total_candles"] or 1), completed=row["candles_processed"] or 0,
                            note=f"{row['candles_processed'] or 0:,}/{row['total_candles'] or 0:,} "
                                 f"{row['backtest_stage'] or ''}")
    status = row.get("status", "unknown")
    console.print(f"job {job_id} {status}" + (f": {row['error_message']}" if row.get("error_message") else "")
                  + (f" — best {_score(row.get('best_score'))} with {row.get('best_params')}"
                     if row.get("best_params") else ""))
    return EXIT_CODES.get(status, 1)
