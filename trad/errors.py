"""The one exception tree of trad.

    TradError
     ├── InvalidInput        bad input from a user: 422 (CLI: exit 2)
     ├── NotFound            an unknown id: 404
     ├── Conflict            an action the current state forbids: 409
     ├── ServiceUnavailable  PostgreSQL or Redis cannot be reached (or no worker answers): 503
     ├── Busy                too much work waiting already (ad-hoc backtests): 429
     └── Cancelled           a stop was requested; training unwinds and ends `stopped`

The core raises these; the API maps them to the JSON error shape in one handler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class TradError(Exception):
    """Base of every error trad raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    @staticmethod
    def describe(details: Sequence[Mapping[str, Any]], most: int | None = None) -> str:
        """Details in one line, `field: issue; field: issue`: the first `most` of them, then how many more."""
        shown = "; ".join(f"{d['field']}: {d['issue']}" for d in details[:most])
        hidden = 0 if most is None else len(details) - most
        return f"{shown} (and {hidden} more)" if hidden > 0 else shown


class InvalidInput(TradError):
    """The input is invalid; `details` names each bad field and what is wrong with it."""

    code = "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, issue: str) -> "InvalidInput":
        """One bad field: the message and the detail say the same thing."""
        return cls(f"{field}: {issue}", [{"field": field, "issue": issue}])

    @classmethod
    def fields(cls, details: list[dict[str, Any]], about: str = "") -> "InvalidInput":
        """Several bad fields: the message names each `field: issue`, after `about` when given."""
        issues = cls.describe(details)
        return cls(f"{about}: {issues}" if about else issues, details)


class NotFound(TradError):
    """No such job, strategy or symbol."""

    code = "NOT_FOUND"


class Conflict(TradError):
    """The action does not fit the current state (e.g. stopping a finished job)."""

    code = "CONFLICT"


class ServiceUnavailable(TradError):
    """PostgreSQL or Redis does not answer."""

    code = "SERVICE_UNAVAILABLE"


class Busy(TradError):
    """Too much of this work is waiting already; try again in a few seconds."""

    code = "TOO_MANY_REQUESTS"


class Cancelled(TradError):
    """A stop was requested for the job; raised from progress callbacks."""

    code = "CANCELLED"


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of an exception's message (a driver's can run to several); `empty`, else the
    exception's type name, when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else empty or type(exc).__name__
