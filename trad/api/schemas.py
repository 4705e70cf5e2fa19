"""The API's pydantic models: query and path parameters, the batch request, every response shape.

The job request itself is `trad.jobs.requests.JobRequest`, a batch's template
`trad.jobs.batches.JobTemplate`, the paged lists' query models are in `trad.api.paging`.
Responses are passed through their model (`shaped`), so /openapi.json documents exactly what
is sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trad.jobs.batches import CancelMode, JobTemplate
from trad.jobs.requests import Strict, Symbol

MAX_JOB_ID = 2**63 - 1
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 200
MAX_OFFSET = MAX_PAGE * MAX_PAGE_SIZE
MAX_METRICS_PAGE = 10_000
JobStatus = Literal["queued", "running", "succeeded", "failed", "stopped"]
SymbolName = Annotated[str, Symbol]


def shaped(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """`data` checked against its response model, as JSON-ready values (ISO 8601 datetimes)."""
    return model.model_validate(data).model_dump(mode="json")


# Errors

class ErrorDetail(BaseModel):
    field: str = Field(description="dotted path of the bad field, e.g. validation.gap_days")
    issue: str


class ErrorInfo(BaseModel):
    code: str = Field(description="VALIDATION_ERROR, NOT_FOUND, CONFLICT, SERVICE_UNAVAILABLE, BAD_JSON, …")
    message: str
    details: list[ErrorDetail]
    trace_id: str


class ErrorBody(BaseModel):
    """Every error response."""

    error: ErrorInfo


COMMON_ERRORS = {status: ErrorBody for status in (401, 422, 500, 503)}


def errors(*statuses: int) -> dict[int, type[ErrorBody]]:
    """Error responses a route documents beyond the common ones (401, 422, 500, 503)."""
    return {status: ErrorBody for status in statuses}


# Parameters

class JobPath(BaseModel):
    job_id: int = Field(ge=1, le=MAX_JOB_ID)


class CancelQuery(BaseModel):
    mode: CancelMode = Field(default="now", description="`now`: stop the batch's queued and running jobs; "
                                                       "`after_current`: let the running jobs finish, start no new one")


class TrainAllQuery(BaseModel):
    force: bool = Field(default=False, description="train symbols already trained on their newest candle too")


class TrainAllRequest(Strict):
    """The optional body of train-all."""

    model_config = ConfigDict(extra="forbid", openapi_extra={"required": False})

    symbols: list[SymbolName] | None = Field(default=None, min_length=1, max_length=1000,
                                             description="default: every symbol with candles of the timeframe")
    template: JobTemplate = Field(default_factory=JobTemplate)

    @model_validator(mode="before")
    @classmethod
    def _empty_body(cls, data: Any) -> Any:
        return {} if data is None else data


# Jobs

class JobRow(BaseModel):
    """A training job: its row of `training_jobs`."""

    id: int
    job_name: str
    status: JobStatus
    strategy: str
    symbol: str
    timeframe: str
    optimizer: str
    objective: str
    config: dict[str, Any]
    batch_id: int | None
    rq_job_id: str | None
    progress: float
    current_stage: str | None
    step_number: int
    total_steps: int
    step_percentage: float
    step_details: dict[str, Any]
    current_episode: int
    total_episodes: int
    current_score: float | None
    best_score: float | None
    best_params: dict[str, Any] | None
    current_reward: float | None
    current_loss: float | None
    candles_processed: int
    total_candles: int
    backtest_stage: str | None
    eta_seconds: float | None
    created_at: datetime
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    estimated_completion: datetime | None
    cancel_requested: bool
    error_message: str | None
    result: dict[str, Any] | None
    worker_name: str | None
    heartbeat_at: datetime | None
    attempts: int
    version: int


class PageMeta(BaseModel):
    """Where a page lies, in both paging styles: `page`/`page_size` and `offset`/`limit`."""

    page: int = Field(description="the page the first row is on")
    page_size: int
    total: int
    total_pages: int
    offset: int
    limit: int


class JobPage(BaseModel):
    items: list[JobRow]
    meta: PageMeta


class JobProgress(BaseModel):
    """A job's progress (the `training_progress` view)."""

    job_id: int
    status: JobStatus
    percentage: float
    current_step: str | None
    step_number: int
    total_steps: int
    step_percentage: float
    step_details: dict[str, Any]
    started_at: datetime | None
    updated_at: datetime
    estimated_completion: datetime | None
    eta_seconds: float | None
    current_iteration: int
    total_iterations: int
    best_score: float | None
    current_score: float | None
    best_params: dict[str, Any] | None
    is_complete: bool
    error_message: str | None
    candles_processed: int
    total_candles: int
    backtest_stage: str | None


class LogLine(BaseModel):
    timestamp: datetime
    level: str
    message: str


class LogPage(BaseModel):
    logs: list[LogLine]
    meta: PageMeta


class MetricMeta(BaseModel):
    total: int = Field(description="evaluations the job has recorded")
    complete_through: int = Field(description="iterations 1 to this one are all recorded: pass it as "
                                              "after_iteration to fetch only what is new (an iteration "
                                              "still to come — running, or a gap a resume fills — is above it)")


class MetricSeries(BaseModel):
    """One entry per evaluated configuration, by iteration: the chart series of a job."""

    iterations: list[int]
    score: list[float | None]
    best_score: list[float | None] = Field(description="the best valid score up to each iteration")
    params: list[dict[str, Any]]
    valid: list[bool]
    duration_ms: list[float | None]
    meta: MetricMeta


# Batch training

class BatchJob(BaseModel):
    symbol: str
    job_id: int


class BatchFailure(BaseModel):
    symbol: str
    issue: str


class BatchStarted(BaseModel):
    batch_id: int
    status: str
    strategy: str
    timeframe: str
    total_symbols: int
    jobs: list[BatchJob]
    skipped: list[str]
    failed: list[BatchFailure]
    message: str


class BatchResults(BaseModel):
    successful: int
    failed: int
    skipped: int
    stopped: int


class BatchTiming(BaseModel):
    elapsed_seconds: float
    eta_seconds: float | None
    elapsed_formatted: str
    eta_formatted: str | None


class BatchProgress(BaseModel):
    batch_id: int | None = Field(description="the newest batch (null before the first)")
    training_in_progress: bool
    current_symbol: str | None
    total_symbols: int
    completed_symbols: int
    remaining_symbols: int
    progress_percent: float
    results: BatchResults
    timing: BatchTiming | None
    cancelling: bool
    cancel_mode: CancelMode | None = Field(description="how a cancelling batch was cancelled")
    started_at: datetime | None
    message: str | None
    last_training_run: datetime | None


class CancelResult(BaseModel):
    success: bool
    message: str


class TimeframeCandles(BaseModel):
    timeframe: str
    candles: int
    first: datetime
    last: datetime


class SymbolCandles(BaseModel):
    symbol: str
    timeframes: list[TimeframeCandles]


class SymbolList(BaseModel):
    symbols: list[SymbolCandles]


# Health and strategies

class ServiceCheck(BaseModel):
    ok: bool
    latency_ms: float | None


class WorkerInfo(BaseModel):
    name: str
    state: str | None
    current_job: str | None = Field(description="the RQ job (run) id it works on")
    last_heartbeat: datetime | None


class QueueInfo(BaseModel):
    name: str
    length: int | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: ServiceCheck
    redis: ServiceCheck
    workers: list[WorkerInfo]
    queue: QueueInfo


class WorkerStatus(BaseModel):
    name: str
    state: str | None = Field(description="RQ's: busy, idle, suspended, …")
    job_id: int | None = Field(description="the training job it runs")
    run_id: str | None = Field(description="the RQ job id of that run")
    last_heartbeat: datetime | None


class JobCounts(BaseModel):
    queued: int
    running: int
    succeeded: int
    failed: int
    stopped: int


class RunningJob(BaseModel):
    id: int
    job_name: str
    strategy: str
    symbol: str
    timeframe: str
    progress: float
    current_stage: str | None
    worker_name: str | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    eta_seconds: float | None


class TrainingStatus(BaseModel):
    """One look at the whole system: who works on what, what waits, the current batch."""

    workers: list[WorkerStatus]
    queue: QueueInfo
    jobs: JobCounts
    running_jobs: list[RunningJob] = Field(description="the running jobs, newest first (at most 100)")
    batch: BatchProgress = Field(description="the newest batch, as /api/v1/training/progress shows it")


class ParamInfo(BaseModel):
    name: str
    type: Literal["int", "float", "categorical"]
    low: float | None
    high: float | None
    step: float | None
    default: Any
    choices: list[Any]


class StrategyInfo(BaseModel):
    name: str
    description: str
    params: list[ParamInfo]
    defaults: dict[str, Any]


class StrategyList(BaseModel):
    strategies: list[StrategyInfo]
    optimizers: list[str]
    objectives: list[str]
    timeframes: list[str]
