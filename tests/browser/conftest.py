"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a real `trad serve`,
real workers, PostgreSQL and Redis. Screenshots go to tests/artifacts/.

Every test fails on a browser console error or an uncaught page error, except the failed
requests a test announces it expects (`console_errors.expect(...)`, e.g. a 422 answer).
"""

from __future__ import annotations

import re
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import USER_TABLES, WebProcess, WorkerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROGRESS_INTERVAL = 0.1
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"



class ConsoleErrors:
    """Console errors and page errors of one page; the expected ones are set aside."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.expected: list[re.Pattern] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        text = f"{message.text} ({message.location.get('url', '')})"
        if any(pattern.search(text) for pattern in self.expected):
            return
        self.errors.append(text)

    @contextmanager
    def expect(self, *patterns: str) -> Iterator[None]:
        """Failed requests matching `patterns` (regular expressions) are fine inside the block."""
        compiled = [re.compile(p) for p in patterns]
        self.expected.extend(compiled)
        try:
            yield
        finally:
            for pattern in compiled:
                self.expected.remove(pattern)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium (skips when it or the playwright package is missing: scripts/ci/install-browser.sh)."""
    required = bool(os.environ.get("TRAD_REQUIRE_BROWSER"))  # CI: a missing browser is a failure
    try:
        from playwright import sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)("the playwright package is not installed")
    if not shutil.which(CHROMIUM):
        (pytest.fail if required else pytest.skip)(f"{CHROMIUM} is missing (scripts/ci/install-browser.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def web(env, db):
    """One `trad serve` for the module, on an emptied database."""
    with db.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(USER_TABLES)} RESTART IDENTITY CASCADE")
    server = WebProcess(env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(env, run_id):
    """Two real `trad worker`s for the module, writing progress every 0.1 s.

    A backtest of 300,000 candles lasts ~40 ms here; with writes every 0.1 s most of them
    land inside a backtest, so the page can show its candle count moving.
    """
    fast = {**env, "TRAD_PROGRESS_INTERVAL": str(PROGRESS_INTERVAL)}
    started = [WorkerProcess(fast, f"trad-test-{run_id}-browser-{n}-{uuid.uuid4().hex[:4]}") for n in (1, 2)]
    yield started
    for worker in started:
        worker.stop()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def page(browser, request):
    """A fresh page (1280×900, en-US); fails the test on a console or page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.console_errors = ConsoleErrors(tab)
    yield tab
    try:
        screenshot(tab, f"{request.node.name}-end")
    finally:
        errors = tab.console_errors.errors
        context.close()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


class Api:
    """The REST API of a running server, for setting the scene (the browser does the rest)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def create_job(self, **fields) -> dict:
        response = requests.post(f"{self.url}/api/v1/training-jobs", json=fields, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: int) -> dict:
        return requests.get(f"{self.url}/api/v1/training-jobs/{job_id}", headers=self.headers, timeout=10).json()

    def stop(self, job_id: int) -> None:
        requests.post(f"{self.url}/api/v1/training-jobs/{job_id}/stop", headers=self.headers, timeout=10)


@pytest.fixture
def api(web) -> Api:
    return Api(web.url)


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"
