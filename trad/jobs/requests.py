"""The request to start a training job: its shape (pydantic) and the checks that need data.

Shape errors (types, ranges, unknown fields) come from pydantic; `check_job_request` adds
what needs the strategies and the stored candles: known strategy, parameter overrides
inside the strategy's bounds, grid size, symbol with candles, dates inside them, enough
candles between them for one backtest that can trade, and walk-forward windows that leave
at least one fold there (windows not given are derived from that range so that they do).
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from trad.data.frames import TIMEFRAMES
from trad.errors import InvalidInput
from trad.training.config import (DEFAULT_FEE_RATE, DEFAULT_MIN_TRADES, DEFAULT_N_ITERATIONS,
                                  DEFAULT_POSITION_SIZE_PCT, DEFAULT_SLIPPAGE,
                                  DEFAULT_VALIDATION_CANDIDATES, TrainingConfig)
from trad.training.windows import Windows, count_folds, fitting_windows

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
assert set(TIMEFRAMES) == set(Timeframe.__args__)
OptimizerName = Literal["grid", "random", "bayesian"]
Objective = Literal["sharpe", "sortino", "total_return", "profit_factor", "calmar", "sqn"]

Symbol = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _without_nul(body: Any) -> Any:
    """Refuse a NUL character in any name or text of a request (PostgreSQL cannot store one);
    walked without recursion, so a deeply nested body cannot exhaust the stack."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", "{where} contains a NUL character",
                                      {"where": where or "a value"})
        if isinstance(value, dict):
            for key, item in value.items():
                pending.append((f"{where}.{key}" if where else str(key), item))
                pending.append((f"the name {key!r}" if isinstance(key, str) else where, key))
        elif isinstance(value, (list, tuple)):
            pending.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return body


class RangeOverride(Strict):
    """Search a numeric parameter between low and high (inclusive), on a grid of `step`."""

    low: float
    high: float
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "RangeOverride":
        if self.low > self.high:
            raise ValueError("low must be <= high")
        return self


class ChoicesOverride(Strict):
    """Search only these values of a parameter."""

    choices: list[Union[int, float, str]] = Field(min_length=1, max_length=1000)


ParamOverride = Union[RangeOverride, ChoicesOverride, int, float, str]


WINDOW_FIELDS = ("train_window_days", "test_window_days", "gap_days")
DERIVED = "not given: derived from the candles' range so that it holds several folds (see the README)"


class ValidationRequest(Strict):
    """Walk-forward validation: rolling train/test windows, in days. Windows not given are
    derived from the candles' range (`trad.training.windows`); given ones must fit a fold."""

    enabled: bool = True
    train_window_days: float | None = Field(default=None, gt=0, le=3650, description=DERIVED)
    test_window_days: float | None = Field(default=None, gt=0, le=3650, description=DERIVED)
    gap_days: float | None = Field(default=None, ge=0, le=3650, description=DERIVED)
    candidates: int = Field(default=DEFAULT_VALIDATION_CANDIDATES, ge=1, le=50)

    def given_windows(self) -> dict[str, float]:
        """The windows the request names."""
        return {name: getattr(self, name) for name in WINDOW_FIELDS if getattr(self, name) is not None}


def _as_utc(moment: datetime) -> datetime:
    """Naive times are UTC: one naive and one zoned date still compare (never a TypeError → 500)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class JobRequest(Strict):
    """Everything but strategy, symbol, timeframe and optimizer has a default."""

    job_name: str | None = Field(default=None, min_length=1, max_length=200)
    strategy: str = Field(min_length=1, max_length=64)
    symbol: str = Symbol
    timeframe: Timeframe
    optimizer: OptimizerName
    objective: Objective = "sharpe"
    n_iterations: int = Field(default=DEFAULT_N_ITERATIONS, ge=1, le=10_000)
    param_space: dict[str, ParamOverride] = Field(default_factory=dict, max_length=50)
    min_trades: int = Field(default=DEFAULT_MIN_TRADES, ge=0, le=100_000)
    n_jobs: int = Field(default=1, ge=1, le=64)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    start: datetime | None = None
    end: datetime | None = None
    fee_rate: float = Field(default=DEFAULT_FEE_RATE, ge=0, le=0.1)
    slippage: float = Field(default=DEFAULT_SLIPPAGE, ge=0, le=0.1)
    position_size_pct: float = Field(default=DEFAULT_POSITION_SIZE_PCT, gt=0, le=1)
    target_score: float | None = None
    patience: int | None = Field(default=None, ge=1, le=10_000)
    validation: ValidationRequest = Field(default_factory=ValidationRequest)

    @field_validator("job_name")
    @classmethod
    def _printable(cls, name: str | None) -> str | None:
        """PostgreSQL stores no NUL and UTF-8 no lone surrogate; line breaks would garble every listing."""
        if name is not None and any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
            raise ValueError("must not contain control characters (NUL, line breaks, …) or lone surrogates")
        return name

    @field_validator("start", "end")
    @classmethod
    def _within_utc_years(cls, moment: datetime | None) -> datetime | None:
        """0001-01-01T00:00+05:00 is in the year 0 in UTC, which no datetime holds (OverflowError → 500)."""
        if moment is not None and moment.tzinfo is not None:
            try:
                moment.astimezone(timezone.utc)
            except OverflowError:
                raise ValueError("lies outside the years 1 to 9999 in UTC") from None
        return moment

    @model_validator(mode="after")
    def _no_nul(self) -> "JobRequest":
        """After the fields' own checks (which name their field): a NUL anywhere else, e.g. in a
        parameter's choices, would reach PostgreSQL's JSONB, which refuses it."""
        _without_nul(self.model_dump())
        return self

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if start is not None and end is not None and _as_utc(start) >= _as_utc(end):
            raise ValueError("end must be after start")
        return end

    def training_config(self) -> TrainingConfig:
        """The stored `config` of the job row."""
        return TrainingConfig.from_mapping({
            "n_iterations": self.n_iterations,
            "param_space": {k: (v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v)
                            for k, v in self.param_space.items()},
            "min_trades": self.min_trades, "n_jobs": self.n_jobs, "seed": self.seed,
            "start": self.start, "end": self.end, "fee_rate": self.fee_rate, "slippage": self.slippage,
            "position_size_pct": self.position_size_pct, "target_score": self.target_score,
            "patience": self.patience, "validation": self.validation.model_dump(exclude_none=True)})

    def default_name(self) -> str:
        return self.job_name or f"{self.strategy} {self.symbol} {self.timeframe} ({self.optimizer})"


CandleCounter = Callable[[datetime | None, datetime | None], int]
"""How many candles of the request's symbol and timeframe lie in [start, end] (None: unbounded)."""


def check_job_request(request: JobRequest, candle_ranges: list[dict[str, Any]], max_configs: int,
                      count_candles: CandleCounter | None = None) -> TrainingConfig:
    """The checks that need strategies and candles; raises InvalidInput naming every bad field.

    Without `count_candles`, a date range is not counted (the whole stored range still is)."""
    from trad.optimize import build_search_space, make_optimizer
    from trad.strategies import get_strategy

    details: list[dict[str, str]] = []
    config = request.training_config()
    try:
        strategy = get_strategy(request.strategy)
    except InvalidInput as exc:
        details += exc.details
        strategy = None
    space = None
    if strategy is not None:
        try:
            space = build_search_space(strategy, config.param_space)
            make_optimizer(request.optimizer, space, n_iterations=config.n_iterations, seed=config.seed,
                           max_configs=max_configs, constraint=strategy.constraint_violation,
                           target_score=config.target_score, patience=config.patience)
        except InvalidInput as exc:
            details += exc.details or [{"field": "param_space", "issue": exc.message}]
            space = None
    candle_issues = _candle_issues(request, candle_ranges)
    details += candle_issues
    if not candle_issues and space is not None:
        details += _range_issues(request, config, candle_ranges, count_candles, smallest_warmup(strategy, space))
    if not candle_issues and config.validation.enabled:
        config, window_issues = _fitted_windows(request, config, candle_ranges)
        details += window_issues
    if details:
        raise InvalidInput.fields(details)
    return config


def _requested_span(request: JobRequest, candle_ranges: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    """The first and last moment of the stored candles within the request's start and end."""
    stored = next(r for r in candle_ranges if r["timeframe"] == request.timeframe)
    first, last = stored["first"], stored["last"]
    if request.start is not None:
        first = max(first, _as_utc(request.start))
    if request.end is not None:
        last = min(last, _as_utc(request.end))
    return first, last


def _fitted_windows(request: JobRequest, config: TrainingConfig,
                    candle_ranges: list[dict[str, Any]]) -> tuple[TrainingConfig, list[dict[str, str]]]:
    """The config with its walk-forward windows: derived from the candles' span where the request
    names none; the issues when the windows it names leave no fold in that span."""
    first, last = _requested_span(request, candle_ranges)
    span = max(0.0, (last - first).total_seconds() / 86_400)
    given = request.validation.given_windows()
    fits = fitting_windows(span)
    derived = fits or Windows(config.validation.train_window_days, config.validation.test_window_days,
                              config.validation.gap_days)
    chosen = Windows(given.get("train_window_days", derived.train), given.get("test_window_days", derived.test),
                     given.get("gap_days", derived.gap))
    config = replace(config, validation=replace(config.validation, train_window_days=chosen.train,
                                                test_window_days=chosen.test, gap_days=chosen.gap))
    if count_folds(span, *chosen):
        return config, []
    bounded = " between start and end" if request.start or request.end else ""
    where = (f"the {_days(span)} days of {request.symbol} {request.timeframe} candles{bounded} "
             f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)")
    if not given:
        issue = f"{where} are too short for any walk-forward fold; turn validation off or choose a longer range"
        return config, [{"field": "validation.enabled", "issue": issue}]
    hint = (f"train {_days(fits.train)}, test {_days(fits.test)}, gap 0 would give {count_folds(span, *fits)} folds"
            if fits else "they are too short for any fold")
    issue = (f"train {_days(chosen.train)} + gap {_days(chosen.gap)} + test {_days(chosen.test)} days leave no "
             f"walk-forward fold in {where}; {hint}")
    return config, [{"field": f"validation.{name}", "issue": issue} for name in WINDOW_FIELDS if name in given]


def _days(days: float) -> str:
    """Days as people write them: 90, 2.5, 0.29."""
    return f"{days:,.2f}".rstrip("0").rstrip(".")


def _candle_issues(request: JobRequest, candle_ranges: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The symbol must have candles of the timeframe; start and end must fall inside them."""
    stored = next((r for r in candle_ranges if r["timeframe"] == request.timeframe), None)
    if stored is None:
        have = sorted({r["timeframe"] for r in candle_ranges})
        issue = (f"no {request.timeframe} candles of {request.symbol}"
                 + (f" (it has {', '.join(have)})" if have else "; import or synthesise some first"))
        return [{"field": "symbol", "issue": issue}]
    issues = []
    first, last = stored["first"], stored["last"]
    for name in ("start", "end"):
        value = getattr(request, name)
        if value is None:
            continue
        value = value if value.tzinfo else value.replace(tzinfo=first.tzinfo)
        if not first <= value <= last:
            issues.append({"field": name, "issue": f"{value.isoformat()} is outside the stored candles "
                                                   f"({first.isoformat()} to {last.isoformat()})"})
    return issues


def smallest_warmup(strategy: type, space: list) -> int:
    """Candles before the first that can signal, for the smallest configuration of the search space.

    A strategy's warm-up (`min_history`) is its longest indicator window, and grows with every
    window parameter: each dimension at its lowest value gives a lower bound over the whole space
    (constraints like fast < slow are not applied, so the bound is never too high).
    """
    lowest = {d.name: (d.choices[0] if d.kind == "categorical" else min(d.choices) if d.choices else d.low)
              for d in space}
    probe = strategy.__new__(strategy)
    probe.params = lowest
    return int(probe.min_history)


def _range_issues(request: JobRequest, config: TrainingConfig, candle_ranges: list[dict[str, Any]],
                  count_candles: CandleCounter | None, warmup: int) -> list[dict[str, str]]:
    """The date range must hold enough candles for one backtest that can trade: the warm-up, then a
    signal candle and the candle it fills at, and never fewer than the workflow's MIN_CANDLES."""
    from trad.training.workflow import MIN_CANDLES

    bounded = config.start is not None or config.end is not None
    if bounded and count_candles is None:
        return []
    held = count_candles(config.start, config.end) if bounded else \
        next(int(r["candles"]) for r in candle_ranges if r["timeframe"] == request.timeframe)
    needed = max(MIN_CANDLES, warmup + 2)
    if held >= needed:
        return []
    where = "between start and end" if bounded else "stored"
    issue = (f"{held:,} {request.timeframe} candles of {request.symbol} {where}; one backtest needs at least "
             f"{needed:,} ({request.strategy} warms up on {warmup:,}, the workflow needs {MIN_CANDLES:,})")
    fields = [name for name in ("start", "end") if getattr(config, name) is not None] or ["symbol"]
    return [{"field": name, "issue": issue} for name in fields]
