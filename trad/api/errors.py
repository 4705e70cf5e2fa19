"""Every error leaves the API in one shape, from one handler:

    {"error": {"code": "VALIDATION_ERROR", "message": "…",
               "details": [{"field": "validation.gap_days", "issue": "…"}], "trace_id": "…"}}

InvalidInput → 422, NotFound (and an unknown RQ job under /rq) → 404, Conflict (and an RQ
operation the job's state forbids) → 409, ServiceUnavailable (and a lost PostgreSQL or Redis
connection) → 503, problems of the HTTP request itself (bad JSON, a missing token, a body
over the size limit or with broken chunks, an unknown route) → their 4xx, anything else →
500 with only the trace id: the traceback goes to the log, never into a response. (HTTP that
gunicorn cannot parse never reaches the app: trad.gunicorn_worker answers it in this shape.)
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Iterable, Mapping

from flask import Response, g, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from pydantic import BaseModel, ValidationError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from werkzeug.exceptions import HTTPException

from trad.db import CONNECTION_ERRORS as DATABASE_ERRORS
from trad.errors import Busy, Conflict, InvalidInput, NotFound, ServiceUnavailable, TradError
from trad.jobs.queue import REDIS_ERRORS

log = logging.getLogger(__name__)

STATUS_OF = ((InvalidInput, 422), (NotFound, 404), (Conflict, 409), (ServiceUnavailable, 503), (Busy, 429))
RETRY_AFTER = {429: "5"}  # seconds: too much work waiting, retry shortly
HTTP_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
              405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}
PASSED_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")

# Where pydantic tags the branch of a union in an error's location (besides model class names).
PRIMITIVE_BRANCHES = frozenset({"int", "float", "str", "bool", "none", "list", "dict"})
ISSUES = {"extra_forbidden": "unknown field", "missing": "required"}
MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


class RequestError(TradError):
    """A problem with the HTTP request itself (bad JSON, no token): it carries its own status and code."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, details)
        self.status, self.code, self.headers = status, code, dict(headers or {})


def trace_id() -> str:
    """The id of the current request, in its errors, its log lines and its X-Trace-Id header."""
    if "trace_id" not in g:
        g.trace_id = uuid.uuid4().hex
    return g.trace_id


def error_response(status: int, code: str, message: str, details: Iterable[Mapping[str, Any]] = (),
                   headers: Mapping[str, str] | None = None) -> Response:
    """A response in the error shape."""
    clean = [{"field": str(d.get("field", "")), "issue": str(d.get("issue", ""))} for d in details]
    response = jsonify({"error": {"code": code, "message": message, "details": clean, "trace_id": trace_id()}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_error(exc: Exception) -> Response:
    """The one error handler of the app."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, RequestError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, TradError):
        status = next((s for kind, s in STATUS_OF if isinstance(exc, kind)), None)
        if status is not None:
            retry = {"Retry-After": RETRY_AFTER[status]} if status in RETRY_AFTER else None
            return error_response(status, exc.code, exc.message, exc.details, retry)
    if isinstance(exc, ValidationError):
        return validation_error_response(exc)
    if isinstance(exc, (ParseException, NoMoreData)):  # gunicorn reading a broken or cut-off chunked body
        kind = "cut off" if isinstance(exc, NoMoreData) else "malformed"
        return error_response(400, "BAD_REQUEST", f"the request body is {kind} ({type(exc).__name__})")
    if isinstance(exc, NoSuchJobError):  # rq-dashboard asked for a run Redis does not hold
        return error_response(404, NotFound.code, f"no such RQ job: {str(exc).removeprefix('No such job: ')}")
    if isinstance(exc, InvalidJobOperation):  # rq-dashboard: e.g. requeue a run that has not failed
        return error_response(409, Conflict.code, "the RQ job is not in a state that allows this")
    if isinstance(exc, DATABASE_ERRORS + REDIS_ERRORS):
        service = "PostgreSQL" if isinstance(exc, DATABASE_ERRORS) else "Redis"
        log.warning("%s unavailable during %s %s (trace %s): %s", service, request.method, request.path,
                    trace_id(), exc)
        return error_response(503, ServiceUnavailable.code, f"{service} is not reachable; try again shortly")
    log.error("unhandled error in %s %s (trace %s)", request.method, request.path, trace_id(), exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", f"internal error; quote trace id {trace_id()} when reporting it")


def _http_error(exc: HTTPException) -> Response:
    """Werkzeug's HTTP errors (unknown route, wrong method, body too large) in the error shape."""
    if exc.response is not None:  # already a finished response (e.g. flask-openapi3's validation abort)
        return exc.response
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k in PASSED_HEADERS}
    if status == 404:
        message = f"no such resource: {request.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.path}"
    elif status == 413:
        message = "the request body is larger than the 1 MB limit"
    else:
        message = exc.description or exc.name
    return error_response(status, HTTP_CODES.get(status, f"HTTP_{status}"), message, headers=headers)


def validation_error_response(exc: ValidationError) -> Response:
    """pydantic's errors as 422 VALIDATION_ERROR with one detail per bad field."""
    details = validation_details(exc)
    return error_response(422, InvalidInput.code, f"invalid input: {InvalidInput.describe(details, most=5)}", details)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """`{field, issue}` per error, field a dotted path; of a union, only the branch the input fits best."""
    errors = [(tuple(e["loc"]), e) for e in exc.errors(include_url=False)]
    details: list[dict[str, str]] = []
    for loc, error in _best_branches(errors):
        detail = {"field": ".".join(str(part) for part in loc) or "body", "issue": _issue(loc, error)}
        if detail not in details:
            details.append(detail)
    return details


def _best_branches(errors: list[tuple[tuple, dict]]) -> list[tuple[tuple, dict]]:
    """Collapse the errors of every union to those of its best fitting branch (recursively)."""
    plain: list[tuple[tuple, dict]] = []
    unions: dict[tuple, dict[str, list[tuple[tuple, dict]]]] = {}
    names = _model_names()
    for loc, error in errors:
        at = next((i for i, part in enumerate(loc) if _is_branch(part, names)), None)
        if at is None:
            plain.append((loc, error))
        else:
            unions.setdefault(loc[:at], {}).setdefault(loc[at], []).append((loc[at + 1:], error))
    for prefix, branches in unions.items():
        fitting = [_best_branches(errs) for errs in branches.values() if not _wrong_kind(errs)]
        if not fitting:
            accepted = ", ".join(_branch_name(tag) for tag in branches)
            plain.append((prefix, {"type": "union", "msg": f"must be one of: {accepted}"}))
            continue
        plain.extend((prefix + loc, error) for loc, error in min(fitting, key=len))
    return plain


def _is_branch(part: Any, model_names: frozenset[str]) -> bool:
    return isinstance(part, str) and ("[" in part or part in PRIMITIVE_BRANCHES or part in model_names)


def _wrong_kind(errors: list[tuple[tuple, dict]]) -> bool:
    """The input is not even of this branch's kind (a dict where a number goes, or the reverse)."""
    return len(errors) == 1 and errors[0][0] == () and errors[0][1]["type"].endswith(("_type", "_parsing"))


def _branch_name(tag: str) -> str:
    """'function-after[_ordered(), RangeOverride]' → '{low, high, step}'; 'int' → 'int'."""
    name = tag.rstrip("]").split(",")[-1].split("[")[-1].strip()
    model = _models_by_name().get(name)
    return "{" + ", ".join(model.model_fields) + "}" if model else name


def _issue(loc: tuple, error: Mapping[str, Any]) -> str:
    if loc == () and error["type"] == "model_type":
        return "must be a JSON object"
    message = ISSUES.get(error["type"], error["msg"])
    for prefix in MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def _models_by_name() -> dict[str, type[BaseModel]]:
    found, todo = {}, [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.setdefault(sub.__name__, sub)
            todo.append(sub)
    return found


def _model_names() -> frozenset[str]:
    return frozenset(_models_by_name())
