"""All of trad's SQL, one module per table. Writers take a connection so callers share transactions."""

from __future__ import annotations

from trad.db import SafeJson, json_safe

__all__ = ["SafeJson", "json_safe"]
