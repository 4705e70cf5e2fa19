"""The settings of one training job, as stored in `training_jobs.config`, with their defaults."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Mapping

import pandas as pd

from trad.errors import InvalidInput

DEFAULT_N_ITERATIONS = 50
DEFAULT_MIN_TRADES = 5
DEFAULT_FEE_RATE = 0.0005
DEFAULT_SLIPPAGE = 0.0
DEFAULT_POSITION_SIZE_PCT = 1.0
DEFAULT_TRAIN_WINDOW_DAYS = 90.0
DEFAULT_TEST_WINDOW_DAYS = 30.0
DEFAULT_GAP_DAYS = 0.0
DEFAULT_VALIDATION_CANDIDATES = 5


@dataclass(frozen=True)
class ValidationConfig:
    """Walk-forward validation: rolling train/test windows, in days."""

    enabled: bool = True
    train_window_days: float = DEFAULT_TRAIN_WINDOW_DAYS
    test_window_days: float = DEFAULT_TEST_WINDOW_DAYS
    gap_days: float = DEFAULT_GAP_DAYS
    candidates: int = DEFAULT_VALIDATION_CANDIDATES


@dataclass(frozen=True)
class TrainingConfig:
    """What a job asks for beyond strategy/symbol/timeframe/optimizer/objective (row columns)."""

    n_iterations: int = DEFAULT_N_ITERATIONS
    param_space: dict[str, Any] = field(default_factory=dict)
    min_trades: int = DEFAULT_MIN_TRADES
    n_jobs: int = 1
    seed: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    fee_rate: float = DEFAULT_FEE_RATE
    slippage: float = DEFAULT_SLIPPAGE
    position_size_pct: float = DEFAULT_POSITION_SIZE_PCT
    target_score: float | None = None
    patience: int | None = None
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> "TrainingConfig":
        """Parse a stored config; unknown keys are an error, missing ones take defaults."""
        config = dict(config or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(config) - known)
        if unknown:
            raise InvalidInput.field("config", f"unknown settings: {', '.join(unknown)}")
        validation = config.pop("validation", None)
        if isinstance(validation, Mapping):
            validation = ValidationConfig(**{k: v for k, v in validation.items()
                                             if k in ValidationConfig.__dataclass_fields__})
        elif validation is None:
            validation = ValidationConfig()
        elif isinstance(validation, bool):
            validation = ValidationConfig(enabled=validation)
        for key in ("start", "end"):
            if config.get(key) is not None:
                config[key] = _utc(config[key], key)
        return cls(validation=validation, **config)

    @property
    def engine_settings(self) -> dict[str, float]:
        """Settings of the backtest engine for every evaluation."""
        return {"fee_rate": self.fee_rate, "slippage": self.slippage,
                "position_size_pct": self.position_size_pct}

    @property
    def workers(self) -> int:
        """Processes to evaluate in: n_jobs, at most the machine's cores."""
        return max(1, min(int(self.n_jobs), os.cpu_count() or 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as stored in training_jobs.config."""
        data = asdict(self)
        for key in ("start", "end"):
            data[key] = data[key].isoformat() if data[key] is not None else None
        return data


def _utc(value: Any, field_name: str) -> datetime:
    """The moment in UTC; InvalidInput for text that is no date, or a date that leaves the years
    1–9999 once in UTC (0001-01-01T00:00+05:00 is in the year 0)."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput.field(field_name, f"{value!r} is not an ISO date") from None
    try:
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
    except (ValueError, OverflowError):
        raise InvalidInput.field(field_name, f"{value!r} lies outside the years 1 to 9999 in UTC") from None
