"""The production web server: gunicorn with gevent workers, so thousands of idle SSE streams
cost a greenlet each instead of a thread (a thread-per-request server serves only as many
streams as it has threads, then starves every other request).

This module imports no part of the app: gunicorn's master stays light, and each worker
imports the app after gevent has patched the standard library."""

from __future__ import annotations

import resource
from typing import Any

from gunicorn.app.base import BaseApplication

from trad.config import Settings


def patch_psycopg_for_gevent(server: Any = None, worker: Any = None) -> None:
    """Make psycopg2 yield to other greenlets while it waits on PostgreSQL."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


def raise_open_file_limit() -> int:
    """Each stream holds a socket: lift the soft file-descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


# gunicorn's default access line holds the query string and the Referer, where the dashboard's
# EventSource puts `?token=`: log the path alone.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'


class WebServer(BaseApplication):
    """gunicorn running `create_app(settings)` in `workers` gevent processes."""

    def __init__(self, settings: Settings, workers: int = 1, access_log: bool = False) -> None:
        self.settings = settings
        self.options = {
            "bind": f"{settings.host}:{settings.port}",
            "workers": workers,
            "worker_class": "trad.gunicorn_worker.TradGeventWorker",  # gevent, error shape for bad HTTP
            "worker_connections": 20_000,
            "timeout": 60,
            "graceful_timeout": 5,
            "keepalive": 75,
            "post_fork": patch_psycopg_for_gevent,
            "accesslog": "-" if access_log else None,
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": "-",
            "proc_name": "trad-web",
            "control_socket_disable": True,  # one shared default path would clash between servers
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from trad.api import create_app

        return create_app(self.settings)


def serve(settings: Settings, workers: int = 1, access_log: bool = False) -> None:
    """Run the web server until it is stopped (SIGINT/SIGTERM)."""
    raise_open_file_limit()
    WebServer(settings, workers, access_log).run()
