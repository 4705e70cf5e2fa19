"""The app under test: `create_app` on the session's database, Redis prefix and queue."""

from __future__ import annotations

import pytest

from trad.api import close_app, create_app
from trad.jobs.queue import training_queue


def forget_runs(redis, settings) -> None:
    """Empty the session's queue and drop its stop flags: job ids restart with every emptied table."""
    training_queue(redis, settings).empty()
    stale = list(redis.scan_iter(match=f"{settings.redis_prefix}cancel:*"))
    if stale:
        redis.delete(*stale)


@pytest.fixture
def client(app, clean_db, redis, settings):
    """A test client on empty tables, an empty queue and no stop flags; none are left behind either."""
    forget_runs(redis, settings)
    yield app.test_client()
    forget_runs(redis, settings)


@pytest.fixture
def make_app(settings):
    """Build extra apps with changed settings (token, unreachable Redis); closed at the end."""
    made = []

    def make(**changes):
        extra = create_app(settings.with_(**changes))
        extra.config["TESTING"] = True
        made.append(extra)
        return extra

    yield make
    for extra in made:
        close_app(extra)
