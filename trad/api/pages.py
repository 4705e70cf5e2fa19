"""What a browser opens: the dashboard at /, Swagger UI at /docs, ReDoc at /redoc, the spec at /openapi.json.

Swagger UI and ReDoc come with flask-openapi3's plugins, their scripts bundled: nothing is
fetched from another host. ReDoc 2.5's sidebar still shows an image from its vendor's CDN, so
the documentation pages carry a Content-Security-Policy that allows this server alone: the
browser never asks another host (the image hides itself when refused).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, current_app, jsonify, redirect, request, send_from_directory
from werkzeug.wrappers import Response as BaseResponse

FRONTEND_DIR = Path(__file__).resolve().parent.parent.parent / "frontend"
SWAGGER_UI = "/docs/swagger"
REDOC = "/docs/redoc"
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")

PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trad</title></head>
<body><h1>trad</h1><p>The dashboard is not installed here.</p>
<ul><li><a href="/docs">API documentation</a></li><li><a href="/rq">RQ dashboard</a></li></ul></body></html>
"""


def register(app: Flask) -> None:
    """Add /, /docs, /redoc and /openapi.json to the app."""
    app.add_url_rule("/", "dashboard", dashboard)
    app.add_url_rule("/docs", "docs", docs)
    app.add_url_rule("/redoc", "redoc_page", redoc)
    app.after_request(keep_docs_on_this_server)
    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    # Browsers ask for /favicon.ico on pages without an icon (a 401 from /rq), and
    # rq-dashboard's pages ask the app's static folder for it: give them ours.
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.add_url_rule("/static/favicon.ico", "static_favicon", favicon)


def dashboard() -> Response | str:
    """The dashboard (frontend/index.html), or a page of links when it is not installed."""
    if (FRONTEND_DIR / "index.html").is_file():
        return send_from_directory(FRONTEND_DIR, "index.html")
    return PLACEHOLDER


def favicon() -> Response:
    """The dashboard's icon, for pages that ask for /static/favicon.ico."""
    return send_from_directory(FRONTEND_DIR, "favicon.svg", mimetype="image/svg+xml")


def docs() -> BaseResponse:
    """Swagger UI, served from the plugin's bundled files."""
    return redirect(SWAGGER_UI)


def redoc() -> BaseResponse:
    """ReDoc, served from the plugin's bundled files."""
    return redirect(REDOC)


def keep_docs_on_this_server(response: Response) -> Response:
    """The documentation pages may load nothing from another host."""
    if request.path.startswith("/docs"):
        response.headers.setdefault("Content-Security-Policy", DOCS_POLICY)
    return response


def openapi_json() -> Response:
    """The OpenAPI 3.1 document generated from the routes and their pydantic models."""
    return jsonify(current_app.api_doc)
