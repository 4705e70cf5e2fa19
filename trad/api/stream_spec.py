"""The SSE streams in /openapi.json.

The streams are served by the plain Flask blueprint in `trad.api.stream` (a long-lived
response, parameters read by hand so a bad one is refused before the stream starts).
flask-openapi3 documents only the routes of its APIBlueprints, so the operations are
declared here, on an APIBlueprint that records their OpenAPI description from these
signatures and models but adds no URL rule: what is served stays in `stream.py`.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field

from trad.api.schemas import COMMON_ERRORS, JobPath, JobStatus, errors

LAST_EVENT_ID = "resume after this event id (the `id:` of the last event received, a job row's version)"
EVENT_STREAM = {
    "description": "A Server-Sent Events stream: `retry: 3000` first; the current rows (or, after a "
                   "Last-Event-ID, every change since), each as `id: <version>`, `event: job`, "
                   "`data: <JobRow JSON>`; then each change as it commits (`event: deleted` with "
                   "`data: {\"id\": …}` for a deleted job); a `: keepalive` comment every 15 s.",
    "content": {"text/event-stream": {
        "schema": {"type": "string"},
        "example": 'retry: 3000\n\nid: 1042\nevent: job\ndata: {"id": 7, "status": "running", "progress": 55.0, …}\n\n',
    }},
}


class StreamQuery(BaseModel):
    """Which job changes the all-jobs stream sends."""

    status: JobStatus | None = Field(default=None, description="only jobs of this status")
    batch_id: int | None = Field(default=None, ge=0, description="only the jobs of this batch (train-all)")
    last_event_id: int | None = Field(default=None, ge=0, description=f"{LAST_EVENT_ID}; for clients that "
                                                                      "cannot send the Last-Event-ID header")


class JobStreamQuery(BaseModel):
    last_event_id: int | None = Field(default=None, ge=0, description=LAST_EVENT_ID)


class StreamHeaders(BaseModel):
    """EventSource sends Last-Event-ID by itself when it reconnects."""

    last_event_id: int | None = Field(default=None, ge=0, alias="Last-Event-ID",
                                      description=f"{LAST_EVENT_ID}; wins over the query parameter")


class SpecOnlyBlueprint(APIBlueprint):
    """An APIBlueprint whose operations appear in the spec but are served elsewhere."""

    def _add_url_rule(self, rule: str, endpoint: Any = None, view_func: Any = None,
                      provide_automatic_options: Any = None, **options: Any) -> None:
        """flask-openapi3's one place that adds a route: add none."""


bp = SpecOnlyBlueprint("stream_spec", __name__, url_prefix="/api/v1/training-jobs",
                       abp_tags=[Tag(name="training jobs")], abp_security=[{"bearer": []}],
                       abp_responses=COMMON_ERRORS)


@bp.get("/stream", operation_id="stream_all_jobs", responses={200: EVENT_STREAM})
def stream_all_jobs(query: StreamQuery, header: StreamHeaders) -> None:
    """Stream every job row change (optionally one status or one batch) as Server-Sent Events."""


@bp.get("/<int:job_id>/stream", operation_id="stream_one_job", responses={200: EVENT_STREAM, **errors(404)})
def stream_one_job(path: JobPath, query: JobStreamQuery, header: StreamHeaders) -> None:
    """Stream one job's changes as Server-Sent Events, until it succeeds, fails, stops or is deleted."""
