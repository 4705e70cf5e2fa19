"""gunicorn's gevent worker, answering what never reaches the app in the error shape.

A request gunicorn cannot parse (a broken request line, header or chunk, a line or header block
over its limits) never reaches Flask: gunicorn answers it with an HTML page and logs
`Invalid request from ip=…: Invalid HTTP request line: 'GET /api/…?token=… HTTP/9'`, the raw line
with any `?token=` the dashboard's EventSource puts there (and a bad header's text, which may be
the Authorization header). This worker answers in the API's JSON error shape, with a trace id,
and logs the kind of error and that trace id only: never the request line, a header or a query.

Loaded by gunicorn by name (trad.serving sets `worker_class`), so importing trad.serving does not
import gevent.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (ExpectationFailed, ForbiddenProxyRequest, InvalidResponseHeader,
                                  InvalidResponseHeaderName, LimitRequestHeaders, LimitRequestLine,
                                  ParseException, UnsupportedTransferCoding)
from gunicorn.workers.ggevent import GeventWorker

# (kind, status, reason, code, message): the first kind the error is an instance of answers it.
INTERNAL = (500, "Internal Server Error", "INTERNAL_ERROR", "internal error; quote trace id {trace} when reporting it")
ANSWERS: tuple[tuple[type | tuple[type, ...], int, str, str, str], ...] = (
    ((InvalidResponseHeader, InvalidResponseHeaderName), *INTERNAL),  # the app's header: its fault, not the client's
    (LimitRequestLine, 414, "URI Too Long", "URI_TOO_LONG", "the request line is longer than the server accepts"),
    (LimitRequestHeaders, 431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE",
     "the request's headers are more or larger than the server accepts"),
    (UnsupportedTransferCoding, 400, "Bad Request", "BAD_REQUEST",  # gunicorn says 501; bad input is a 4xx here
     "the request's Transfer-Encoding is not supported (send chunked or a Content-Length)"),
    (ExpectationFailed, 417, "Expectation Failed", "EXPECTATION_FAILED",
     "the request's Expect header is not supported"),
    (ForbiddenProxyRequest, 403, "Forbidden", "FORBIDDEN", "PROXY protocol lines are not accepted from this address"),
    (ParseException, 400, "Bad Request", "BAD_REQUEST", "malformed HTTP request: {kind}"),
)


def answer_for(exc: BaseException) -> tuple[int, str, str, str]:
    """(status, reason, code, message) of the response to a request that failed outside the app."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", type(exc).__name__)  # InvalidHTTPVersion → 3 words
    status, reason, code, message = next((answer[1:] for answer in ANSWERS if isinstance(exc, answer[0])), INTERNAL)
    return status, reason, code, message.replace("{kind}", " ".join(words).lower())


def error_response(status: int, reason: str, code: str, message: str, trace: str) -> bytes:
    """A complete HTTP/1.1 response with the error shape as its body; the connection closes after it."""
    body = json.dumps({"error": {"code": code, "message": message.replace("{trace}", trace), "details": [],
                                 "trace_id": trace}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Trace-Id: {trace}\r\n\r\n")
    return head.encode("latin-1") + body


class TradGeventWorker(GeventWorker):
    """gunicorn's gevent worker with `handle_error` answering in the error shape and logging no request text."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        trace = uuid.uuid4().hex
        status, reason, code, message = answer_for(exc)
        peer = (addr or ("",))[0] or "unix socket"
        if status >= 500:
            path = getattr(req, "path", None) or "(no request line read)"
            self.log.error("error handling request %s %s from %s (trace %s)", getattr(req, "method", ""), path,
                           peer, trace, exc_info=exc)
        else:
            self.log.warning("invalid request from %s (trace %s): %s, answered %s", peer, trace,
                             type(exc).__name__, status)
        try:
            util.write_nonblock(client, error_response(status, reason, code, message, trace))
        except Exception:
            self.log.debug("could not send the error response (trace %s)", trace)
