"""What every request passes through: a trace id, the access token, a well-formed JSON body."""

from __future__ import annotations

import hmac
import json
from urllib.parse import unquote

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from trad.api.errors import RequestError, trace_id
from trad.api.services import services

TOKEN_COOKIE = "trad_token"
TOKEN_QUERY = "token"  # for EventSource, which cannot send headers
BODY_METHODS = ("POST", "PUT", "PATCH")


def install(app: Flask) -> None:
    """Register the hooks in the order they must run."""
    app.before_request(begin_request)
    app.before_request(check_token)
    app.before_request(check_json_body)
    app.after_request(end_request)


def begin_request() -> None:
    """Give the request its trace id."""
    trace_id()


def end_request(response: Response) -> Response:
    """Name the trace id in every response."""
    response.headers["X-Trace-Id"] = g.get("trace_id") or trace_id()
    return response


def is_protected(path: str) -> bool:
    """The API and the RQ dashboard need the token; the dashboard page, docs and spec stay open."""
    return path == "/api" or path.startswith("/api/") or path == "/rq" or path.startswith("/rq/")


def presented_token() -> str | None:
    """The token of the request: Bearer header, else the cookie, else the query parameter."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        return unquote(cookie)  # the page writes it with encodeURIComponent
    return request.args.get(TOKEN_QUERY) or None


def check_token() -> None:
    """401 unless the request carries TRAD_API_TOKEN (when one is set)."""
    expected = services().settings.api_token
    if not expected or not is_protected(request.path):
        return
    presented = presented_token()
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise RequestError(401, "UNAUTHORIZED",
                           "a valid access token is required (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": 'Bearer realm="trad"'})


def check_json_body() -> None:
    """A body sent to the API must be JSON that parses: 415 for another type, 400 BAD_JSON otherwise."""
    if request.method not in BODY_METHODS or not is_protected(request.path) or request.path.startswith("/rq"):
        return
    data = request.get_data(cache=True)  # beyond MAX_CONTENT_LENGTH this raises 413
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit is not None and len(data) >= limit:
        # A chunked body is cut at the limit, not refused: refuse it when more follows.
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    if not data.strip():
        return
    if not request.is_json:
        raise RequestError(415, "UNSUPPORTED_MEDIA_TYPE",
                           f"send the body as JSON (Content-Type: application/json), not {request.mimetype or 'untyped'}")
    try:
        json.loads(data)
    except ValueError as exc:
        raise RequestError(400, "BAD_JSON", f"the request body is not valid JSON: {exc}",
                           [{"field": "body", "issue": str(exc)}]) from None
