"""The WHERE clause of a query whose filters are optional."""

from __future__ import annotations

from typing import Any


def where(*filters: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`WHERE a AND b …` of the filters whose value is not None, and those values as parameters.

    Each filter is a condition written in the query's own SQL with one `%s` (`"status = %s"`)
    beside its value; with no value given the clause is empty, so every row matches.
    """
    chosen = [(condition, value) for condition, value in filters if value is not None]
    clause = "WHERE " + " AND ".join(condition for condition, _ in chosen) if chosen else ""
    return clause, [value for _, value in chosen]
