"""The pydantic models of the results routes: trained configurations, stored backtests, candles
for the chart, and the analysis of a search."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from trad.api.paging import PageQuery
from trad.api.schemas import MAX_JOB_ID, PageMeta
from trad.jobs.requests import Symbol, Timeframe

MAX_BARS = 5_000
MAX_FOLD = 10_000


# Parameters

class ConfigurationQuery(PageQuery):
    symbol: Annotated[str, Symbol] | None = None
    strategy: str | None = Field(default=None, min_length=1, max_length=64)
    timeframe: Timeframe | None = None


class BacktestPath(BaseModel):
    backtest_id: int = Field(ge=1, le=MAX_JOB_ID)


class BacktestQuery(PageQuery):
    """Which trades come with the backtest: a page of one list, or all of it as CSV."""

    DEFAULT_PAGE_SIZE: ClassVar[int] = 50

    fold: int = Field(default=0, ge=0, le=MAX_FOLD,
                      description="0: the trades over the whole range; n: those of fold n's out-of-sample window")
    format: Literal["json", "csv"] = Field(default="json", description="csv: every trade of the list, as a file")


class CandleQuery(BaseModel):
    """A time range of the backtest's candles, as at most `max_bars` bars."""

    start: datetime | None = Field(default=None, description="default: the backtest's first candle")
    end: datetime | None = Field(default=None, description="default: its last candle")
    max_bars: int = Field(default=1_500, ge=10, le=MAX_BARS)

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if start is not None and end is not None and _utc(start) > _utc(end):
            raise ValueError("end must not be before start")
        return end


def _utc(moment: datetime) -> datetime:
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# Trained configurations

class WalkForwardSummary(BaseModel):
    folds: int
    scored_folds: int | None
    mean_out_of_sample_score: float | None
    std_out_of_sample_score: float | None
    mean_in_sample_score: float | None
    degradation: float | None = Field(description="mean in-sample − mean out-of-sample score")
    skipped: str | None = Field(description="why validation made no folds, if it made none")


class Configuration(BaseModel):
    """One configuration of a strategy on a symbol's candles, and how it scored."""

    id: int
    strategy: str
    symbol: str
    timeframe: str
    params: dict[str, Any]
    objective: str
    score: float | None
    metrics: dict[str, Any]


class TrainedConfiguration(Configuration):
    """A saved winner: the configuration, its score and where it came from."""

    job_id: int | None = Field(description="the training job that saved it (kept after the job is deleted)")
    job_exists: bool
    backtest_id: int | None = Field(description="its stored backtest: GET /api/v1/backtests/{backtest_id}")
    data_start: datetime | None
    data_end: datetime | None
    created_at: datetime
    walk_forward: WalkForwardSummary | None


class ConfigurationPage(BaseModel):
    items: list[TrainedConfiguration]
    meta: PageMeta


# Backtests

class EquityCurve(BaseModel):
    """At most 2,000 points (LTTB; highest, lowest equity and the deepest drawdown kept)."""

    time: list[int] = Field(description="Unix seconds")
    equity: list[float]
    drawdown: list[float] = Field(description="fall from the running peak, a fraction (0.1 = 10 %)")


class CandleBars(BaseModel):
    """Candles merged into bars of `per_bar` candles (1: the candles themselves)."""

    per_bar: int
    time: list[int] = Field(description="Unix seconds of each bar's first candle")
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]


class SegmentCurve(BaseModel):
    time: list[int]
    equity: list[float]


class FoldSegment(BaseModel):
    """One walk-forward fold's out-of-sample window, backtested with the parameters it chose."""

    fold: int
    train_start: datetime | None
    train_end: datetime | None
    test_start: datetime
    test_end: datetime
    params: dict[str, Any]
    in_sample_score: float | None
    out_of_sample_score: float | None
    candles: int
    metrics: dict[str, Any]
    equity: SegmentCurve


class Trade(BaseModel):
    number: int
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    units: float
    pnl: float = Field(description="after both fees")
    return_pct: float = Field(description="pnl over the cash the trade spent, a fraction")
    exit_reason: Literal["stop", "target", "signal", "max_hold", "end"]
    candles_held: int


class TradePage(BaseModel):
    fold: int
    items: list[Trade]
    meta: PageMeta


class BacktestView(Configuration):
    """A stored backtest: metrics, equity and drawdown, the folds' out-of-sample segments, a page of trades.
    Its candles, for the chart, come by range from /api/v1/backtests/{id}/candles."""

    kind: Literal["trained", "adhoc"]
    training_job_id: int | None
    job_exists: bool
    trained_configuration_id: int | None
    settings: dict[str, float]
    start: datetime
    end: datetime
    candles: int
    created_at: datetime
    trades_stored: int = Field(description="trades listed over the whole range (metrics.n_trades counts all)")
    equity: EquityCurve
    folds: list[FoldSegment]
    trades: TradePage


class TradeMarker(BaseModel):
    number: int
    entry_time: int = Field(description="Unix seconds")
    exit_time: int
    entry_price: float
    exit_price: float
    pnl: float
    return_pct: float
    exit_reason: str


class CandleWindow(CandleBars):
    """The candles of a range as bars, with the trades open in it."""

    start: datetime
    end: datetime
    seconds_per_bar: int
    trades: list[TradeMarker]
    trades_complete: bool = Field(description="false when more trades fall in the range than are sent: zoom in")


# The analysis of a search

class ImportanceShare(BaseModel):
    name: str
    share: float = Field(description="share of the score's (rank) variance this parameter explains alone, 0–1")


class SliceBin(BaseModel):
    value: Any = Field(description="the parameter's value, or the centre of a range")
    low: float | None = None
    high: float | None = None
    count: int
    mean: float | None
    best: float | None


class ParamSlice(BaseModel):
    name: str
    kind: Literal["values", "ranges", "categorical"]
    bins: list[SliceBin]


class ScoreGrid(BaseModel):
    x: str
    y: str
    x_values: list[Any]
    y_values: list[Any]
    best: list[list[float | None]] = Field(description="rows by y, columns by x")
    mean: list[list[float | None]]
    count: list[list[int]]


class SearchPoints(BaseModel):
    iteration: list[int]
    score: list[float]
    params: dict[str, list[Any]]


class SearchAnalysis(BaseModel):
    """Which parameters matter and where the good region lies, from a job's recorded evaluations."""

    job_id: int
    objective: str
    method: str
    evaluations: int
    scored: int
    importance: list[ImportanceShare]
    unexplained: float
    slices: list[ParamSlice]
    heatmap: ScoreGrid | None
    points: SearchPoints
