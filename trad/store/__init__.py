"""All of trad's SQL, one module per table. Writers take a connection so callers share transactions."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from psycopg2.extras import Json


def json_safe(value: Any) -> Any:
    """A JSON-able copy: numpy scalars → Python numbers, NaN and ±inf → None, dates → ISO text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


class SafeJson(Json):
    """psycopg2's Json adapter over `json_safe`: PostgreSQL's jsonb accepts no NaN or Infinity."""

    def dumps(self, obj: Any) -> str:
        return json.dumps(json_safe(obj), allow_nan=False)
