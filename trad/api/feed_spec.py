"""The WebSocket feed in /openapi.json: its two handshakes, their parameters, refusals, and the
JSON messages either side sends (served by `trad.api.feed`; declared here on a blueprint that
adds no URL rule, as for the SSE streams)."""

from __future__ import annotations

from typing import Literal, Union

from flask_openapi3 import Tag
from pydantic import BaseModel, Field, RootModel

from trad.api.schemas import COMMON_ERRORS, JobPath, JobRow, JobStatus, errors
from trad.api.stream_spec import SpecOnlyBlueprint

PROTOCOL = """

A WebSocket (RFC 6455, no extension). Server messages are JSON text frames (`FeedMessage`):
`connected` first — the changes up to its `version` are in what follows, later ones arrive live —
then the snapshot the SSE stream starts with (a job's own feed: the job's newest row), each as a
`job` message, then every change as it commits (`job`, `deleted`). A `reset` says the client
fell more than 1,000 jobs behind, or asked to resume from further back than the server keeps:
reload by REST and carry on. Client messages (`x-client-messages`): `{"type": "ping"}` is
answered `{"type": "pong"}`; `{"type": "resume", "after": v}` replays the newest state of every
job changed after version v, deletions included, or sends a reset; anything else is answered
`error`. The server sends a WebSocket ping every 15 s (`TRAD_WS_PING_INTERVAL`) and closes (1008)
a client that did not answer the previous one. The token as for every route: Bearer header,
`?token=` or the `trad_token` cookie; a handshake naming another origin is refused (403).
A request that is no WebSocket handshake is answered 426."""


class Connected(BaseModel):
    type: Literal["connected"]
    version: int = Field(description="changes up to this version are in what follows this message")


class JobMessage(BaseModel):
    type: Literal["job"]
    version: int
    job: JobRow


class DeletedMessage(BaseModel):
    type: Literal["deleted"]
    version: int
    id: int = Field(description="the deleted job")


class ResetMessage(BaseModel):
    type: Literal["reset"]
    version: int = Field(description="reload by REST; the feed goes on with the changes after this version")
    reason: Literal["history", "unknown", "backlog"]


class PongMessage(BaseModel):
    type: Literal["pong"]


class ErrorMessage(BaseModel):
    type: Literal["error"]
    message: str


class FeedMessage(RootModel[Union[Connected, JobMessage, DeletedMessage, ResetMessage, PongMessage, ErrorMessage]]):
    """What the server sends over the feed (JSON text frames)."""


class PingMessage(BaseModel):
    type: Literal["ping"]


class ResumeMessage(BaseModel):
    type: Literal["resume"]
    after: int = Field(ge=0, description="a version the client has seen (a `version` of a message)")


class ClientMessage(RootModel[Union[PingMessage, ResumeMessage]]):
    """What a client may send over the feed (JSON text frames)."""


class FeedQuery(BaseModel):
    """Which job changes the all-jobs feed sends."""

    status: JobStatus | None = Field(default=None, description="only jobs of this status")
    batch_id: int | None = Field(default=None, ge=0, description="only the jobs of this batch (train-all)")


class Handshake(BaseModel):
    """The headers of a WebSocket opening handshake."""

    upgrade: Literal["websocket"] = Field(alias="Upgrade")
    sec_websocket_key: str = Field(alias="Sec-WebSocket-Key", description="16 random bytes in base64")
    sec_websocket_version: Literal["13"] = Field(alias="Sec-WebSocket-Version")


bp = SpecOnlyBlueprint("feed_spec", __name__, url_prefix="/api/v1/training-jobs",
                       abp_tags=[Tag(name="training jobs")], abp_security=[{"bearer": []}],
                       abp_responses={**COMMON_ERRORS, **errors(400, 403, 426)})
EXTENSIONS = {"x-client-messages": ClientMessage.model_json_schema()}


@bp.get("/ws", operation_id="feed_all_jobs", responses={101: FeedMessage}, openapi_extensions=EXTENSIONS,
        summary="Every job change (optionally one status or one batch) over a WebSocket", description=PROTOCOL)
def feed_all_jobs(query: FeedQuery, header: Handshake) -> None:
    """Declared for the spec; trad.api.feed serves it."""


@bp.get("/<int:job_id>/ws", operation_id="feed_one_job", responses={101: FeedMessage, **errors(404)},
        openapi_extensions=EXTENSIONS, description=PROTOCOL,
        summary="One job's changes over a WebSocket, closed (1000) after its terminal state or deletion")
def feed_one_job(path: JobPath, header: Handshake) -> None:
    """Declared for the spec; trad.api.feed serves it."""
