"""What every request passes through: a trace id, the access token, a same-origin check for state
changes, only the query parameters the API documents, well-formed rq-dashboard arguments (and
runs it can delete), a well-formed JSON body."""

from __future__ import annotations

import hmac
import json
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, current_app, g, request
from flask_openapi3.utils import parse_rule
from rq import Queue
from rq.job import JOB_ID_PATTERN
from rq.registry import (CanceledJobRegistry, DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry,
                         StartedJobRegistry)
from werkzeug.exceptions import RequestEntityTooLarge

from trad.api.errors import RequestError, trace_id
from trad.api.services import services
from trad.errors import InvalidInput, NotFound
from trad.jobs.queue import forget_expired_executions

TOKEN_COOKIE = "trad_token"
TOKEN_QUERY = "token"  # for EventSource, which cannot send headers
BODY_METHODS = ("POST", "PUT", "PATCH")
MAX_JSON_DEPTH = 32  # a job request nests 4 deep; json.loads itself recurses (RecursionError near 1,000)
TOO_DEEP = object()
STATE_CHANGING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
STATE_CHANGING_GETS = frozenset({"rq_dashboard.requeue_all"})  # requeues every failed run of a queue
WEBSOCKETS = frozenset({"feed.feed_all_jobs", "feed.feed_one_job"})  # no CORS guards them: see below
SAME_ORIGIN_SITES = ("same-origin", "none")  # Sec-Fetch-Site of the page's own requests, or typed by the user
RQ_REGISTRIES = ("queued", "started", "finished", "failed", "deferred", "scheduled", "canceled")
RQ_EMPTIED_ONE_BY_ONE = {"started": StartedJobRegistry, "finished": FinishedJobRegistry, "failed": FailedJobRegistry,
                         "deferred": DeferredJobRegistry, "canceled": CanceledJobRegistry}  # rq-dashboard deletes each run
RQ_ORDERS = ("asc", "dsc")
RQ_PAGE_LIMITS = {"page": 1_000_000, "per_page": 1_000}
QUERY_PARAMETERS = "trad_query_parameters"


def install(app: Flask) -> None:
    """Register the hooks in the order they must run."""
    app.before_request(begin_request)
    app.before_request(check_token)
    app.before_request(check_same_origin)
    app.before_request(check_query_parameters)
    app.before_request(check_rq_arguments)
    app.before_request(let_rq_dashboard_delete_dead_runs)
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


def check_same_origin() -> None:
    """403 for a state change a page of another origin made a browser send.

    The browser sends the `trad_token` cookie (or, with no token set, nothing is needed) with
    requests from any page of the same site: another port or a sibling subdomain, which SameSite
    does not tell apart. A browser names where a request comes from: Sec-Fetch-Site, or else
    Origin. A request with an Authorization header passes: no other origin can make a browser
    send one without CORS permission, and trad grants none. A request naming neither (curl, a
    script) comes from no page and passes, except the GET that requeues rq-dashboard's failed
    runs: a GET carries no Origin, so only Sec-Fetch-Site can clear it.

    A WebSocket handshake is a GET, but a browser opens one from any page, with the cookie, and
    lets that page read it (WebSockets know no CORS): it is checked like a state change, and
    passes when it names no origin (a client that is no browser).
    """
    websocket = request.endpoint in WEBSOCKETS
    changes_state = request.method in STATE_CHANGING_METHODS or request.endpoint in STATE_CHANGING_GETS or websocket
    if not changes_state or "Authorization" in request.headers:
        return
    site, origin = request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin")
    if site is not None:
        allowed = site.lower() in SAME_ORIGIN_SITES
    elif origin is not None:
        allowed = _origin_host(origin) == request.host.lower()
    else:
        allowed = request.method != "GET" or websocket
    if not allowed:
        raise RequestError(403, "FORBIDDEN", "a state change from another origin is refused: send it from "
                                             "this server's own pages or with an Authorization header")


def _origin_host(origin: str) -> str | None:
    """host[:port] of an Origin header; None for `null` or anything unparseable."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def check_query_parameters() -> None:
    """422 naming each query parameter the API route does not document in /openapi.json (`token`
    is taken everywhere): a misspelt `page_sise` or a `limit` a route does not know is refused,
    not silently ignored. rq-dashboard's pages are its own and keep their own rules."""
    if request.url_rule is None or not request.path.startswith("/api/") or request.method == "OPTIONS":
        return
    known = documented_query_parameters(request.url_rule.rule, request.method)
    unknown = [name for name in dict.fromkeys(request.args) if name not in known]
    if unknown:
        takes = ", ".join(sorted(known - {TOKEN_QUERY})) or "none"
        raise InvalidInput(f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                           f"(this route takes: {takes})",
                           [{"field": name, "issue": "unknown query parameter"} for name in unknown])


def documented_query_parameters(rule: str, method: str) -> frozenset[str]:
    """The query parameters /openapi.json names for a route and method, and `token`."""
    table = current_app.extensions.get(QUERY_PARAMETERS)
    if table is None:
        table = {}
        for path, operations in current_app.api_doc.get("paths", {}).items():
            for verb, operation in operations.items():
                names = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"}
                table[(path, verb.upper())] = frozenset(names | {TOKEN_QUERY})
        current_app.extensions[QUERY_PARAMETERS] = table
    verb = "GET" if method == "HEAD" else method
    return table.get((parse_rule(rule), verb), frozenset({TOKEN_QUERY}))


def check_rq_arguments() -> None:
    """rq-dashboard uses its URL's parts as they come: 404 for an instance, registry or job id that
    cannot exist, 422 for a page, page size or order that is not one."""
    if request.blueprint != "rq_dashboard" or not request.view_args:
        return
    args = request.view_args
    instance = args.get("instance_number")
    instances = current_app.config.get("RQ_DASHBOARD_REDIS_URL") or ()
    if instance is not None and instance >= len(instances):
        raise NotFound(f"no RQ instance {instance}: this server has {len(instances)} (numbered from 0)")
    if "job_id" in args and not JOB_ID_PATTERN.fullmatch(args["job_id"]):
        raise NotFound(f"no such RQ job: {args['job_id']!r} (an id is letters, digits, _ and -)")
    if args.get("registry_name", "queued") not in RQ_REGISTRIES:
        raise NotFound(f"no RQ registry {args['registry_name']!r}; one of {', '.join(RQ_REGISTRIES)}")
    for name, highest in RQ_PAGE_LIMITS.items():
        value = str(args.get(name, 1))
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= highest):
            raise InvalidInput.field(name, f"must be a whole number from 1 to {highest:,}, got {value!r}")
    if args.get("order", "asc") not in RQ_ORDERS:
        raise InvalidInput.field("order", f"must be one of {', '.join(RQ_ORDERS)}, got {args['order']!r}")
    if request.endpoint == "rq_dashboard.compact_queue" and not Queue(args["queue_name"],
                                                                      connection=current_app.redis_conn).count:
        raise NotFound(f"RQ queue {args['queue_name']!r} holds no jobs to compact")  # rq's RENAME would fail


def let_rq_dashboard_delete_dead_runs() -> None:
    """Before rq-dashboard deletes runs (a run's delete button, or emptying a registry run by run),
    drop the executions RQ still lists but no longer holds: a run whose worker died less than a
    minute ago could not be deleted otherwise (`trad.jobs.queue.forget_expired_executions`)."""
    args = request.view_args or {}
    if request.endpoint == "rq_dashboard.delete_job_view":
        runs = [args["job_id"]]
    elif request.endpoint == "rq_dashboard.empty_queue" and args["registry_name"] in RQ_EMPTIED_ONE_BY_ONE:
        registry = RQ_EMPTIED_ONE_BY_ONE[args["registry_name"]](args["queue_name"], connection=current_app.redis_conn)
        runs = registry.get_job_ids(cleanup=False)
    else:
        return
    forget_expired_executions(current_app.redis_conn, runs)


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
        body = json.loads(data)
    except RecursionError:
        body = TOO_DEEP  # deeper than the interpreter's stack: certainly deeper than the limit
    except ValueError as exc:
        raise RequestError(400, "BAD_JSON", f"the request body is not valid JSON: {exc}",
                           [{"field": "body", "issue": str(exc)}]) from None
    if body is TOO_DEEP or json_depth(body) > MAX_JSON_DEPTH:
        issue = f"nested deeper than {MAX_JSON_DEPTH} levels"
        raise RequestError(400, "BAD_JSON", f"the request body is {issue}", [{"field": "body", "issue": issue}])


def json_depth(value: object) -> int:
    """How deep arrays and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        value, depth = todo.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in children)
    return deepest
