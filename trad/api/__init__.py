"""The Flask app: `create_app(settings)` builds one; nothing is created at import time.

Blueprints: jobs (/api/v1/training-jobs), their SSE streams (served by `stream`, described
in the spec by `stream_spec`) and WebSocket feed (`feed`, `feed_spec`), batch
(/api/v1/training), the status overview, health, strategies, results (trained configurations,
stored and ad-hoc backtests, the analysis of a search); the spec at /openapi.json, Swagger UI
at /docs and ReDoc at /redoc (flask-openapi3), rq-dashboard at /rq,
the dashboard at /. Errors of every kind leave in one shape (trad.api.errors).
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider
from flask_openapi3 import Info, OpenAPI

from trad.api import batch, feed_spec, health, hooks, jobs, pages, results, status, strategies, stream_spec
from trad.api.broadcaster import Broadcaster
from trad.api.errors import handle_error, validation_error_response
from trad.api.pages import FRONTEND_DIR
from trad.api.schemas import ErrorBody
from trad.api.services import EXTENSION, Services
from trad.api.stream import register_stream
from trad.config import Settings, get_settings
from trad.db import Database
from trad.jobs.queue import connect_redis
from trad.store import json_safe

MAX_CONTENT_LENGTH = 1024 * 1024
BEARER = {"bearer": {"type": "http", "scheme": "bearer",
                     "description": "TRAD_API_TOKEN, when the server sets one"}}


class JSONProvider(DefaultJSONProvider):
    """JSON out: ISO 8601 datetimes, NaN and infinities as null, keys in the order given.

    Most answers are plain JSON already (passed through their response model): those go
    straight to the C encoder, and only one it refuses (a datetime, a numpy number, a NaN) is
    copied through `json_safe` first — which, walking every value in Python, took half the
    CPU of a 250 kB backtest answer.
    """

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return super().dumps(obj, **{**kwargs, "default": _refuse, "allow_nan": False})
        except (TypeError, ValueError):
            return super().dumps(json_safe(obj), **kwargs)


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not plain JSON")


def create_app(settings: Settings | None = None) -> OpenAPI:
    """A new app with its own database pool and Redis client (opened lazily)."""
    from trad import __version__

    settings = settings or get_settings()
    app = OpenAPI(__name__, info=Info(title="trad", version=__version__,
                                      description="Train trading strategies and watch the training live."),
                  security_schemes=BEARER, doc_prefix="/docs", doc_url="/openapi.json",
                  validation_error_callback=validation_error_response, validation_error_model=ErrorBody,
                  static_folder=str(FRONTEND_DIR), static_url_path="/static")
    app.json = JSONProvider(app)
    app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH, RQ_DASHBOARD_REDIS_URL=settings.redis_url)
    db = Database(settings.database_url, max_connections=20, application_name="trad-web")
    app.extensions[EXTENSION] = Services(settings=settings, db=db, redis=connect_redis(settings),
                                         broadcaster=Broadcaster(settings.database_url))
    hooks.install(app)
    app.register_error_handler(Exception, handle_error)
    for blueprint in (jobs.bp, batch.bp, status.bp, health.bp, strategies.bp, results.bp, stream_spec.bp,
                      feed_spec.bp):
        app.register_api(blueprint)
    register_stream(app)
    pages.register(app)
    _mount_rq_dashboard(app)
    return app


def close_app(app: OpenAPI) -> None:
    """Stop the app's stream listener and close its pool and Redis client (tests, embedded use)."""
    app.extensions[EXTENSION].close()


def _mount_rq_dashboard(app: OpenAPI) -> None:
    """rq-dashboard at /rq (the token check is the app-level hook in trad.api.hooks)."""
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
