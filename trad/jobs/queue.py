"""RQ wiring: the queue, enqueueing a training job, the stop flag and the stop command, and what
RQ leaves behind (executions it no longer holds, a tagged run's keys)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import redis as redis_lib
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job

from trad.config import Settings
from trad.jobs.stop_flags import cancel_key

log = logging.getLogger(__name__)

RUN_JOB = "trad.jobs.runner.run_job"
CANCEL_FLAG_TTL = 24 * 3600  # the run sees its flag within a second; the row keeps the request
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
REDIS_ERRORS = (redis_lib.ConnectionError, redis_lib.TimeoutError)
"""What a Redis that is down or restarting raises."""


def connect_redis(settings: Settings) -> redis_lib.Redis:
    """A Redis client with short timeouts, so a dead Redis is an error, not a hang."""
    return redis_lib.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                    health_check_interval=30)


def training_queue(connection: redis_lib.Redis, settings: Settings) -> Queue:
    """The RQ queue training jobs go to (TRAD_QUEUE)."""
    return Queue(settings.queue, connection=connection)


def forget_tagged_keys(client: redis_lib.Redis, tag: str) -> None:
    """Delete what a deployment tagged `tag` (its key prefix and every queue name start with it)
    left in a shared Redis, a test session's or a bench's: its keys, RQ's keys and registries of
    its queues, the RQ jobs that ran on them (their ids carry no tag: found by their `origin`)
    with their results, and its queues' names in RQ's set of queues. Nothing of another origin
    is touched."""
    keys = [*client.scan_iter(match=f"{tag}*", count=1000), *client.scan_iter(match=f"rq:*{tag}*", count=1000)]
    jobs = [key for key in client.scan_iter(match="rq:job:*", count=1000) if key.count(b":") == 2]
    with client.pipeline(transaction=False) as pipe:
        for key in jobs:
            pipe.hget(key, "origin")
        origins = pipe.execute(raise_on_error=False)  # a job key gone or of another type meanwhile
    for key, origin in zip(jobs, origins):
        if isinstance(origin, bytes) and origin.decode(errors="replace").startswith(tag):
            run = key.decode().removeprefix("rq:job:")
            keys += [key, f"rq:results:{run}", f"rq:job:{run}:dependents", f"rq:job:{run}:dependencies"]
    if keys:
        client.delete(*keys)
    queues = [name for name in client.smembers("rq:queues") if tag in name.decode(errors="replace")]
    if queues:
        client.srem("rq:queues", *queues)


def forget_expired_executions(connection: redis_lib.Redis, run_ids: Iterable[str]) -> int:
    """Drop from each run's execution registry the executions Redis no longer holds; returns how many.

    RQ 3.0 lists an execution there 60 s longer than it keeps the execution itself: for a minute
    after its worker died, a run is one `Job.delete()` cannot delete ("Execution … not found in
    Redis"), which is what rq-dashboard's delete and empty buttons call.
    """
    runs = list(run_ids)
    with connection.pipeline(transaction=False) as pipe:
        for run in runs:
            pipe.zrange(ExecutionRegistry(run, connection).key, 0, -1)
        listed = pipe.execute()
    executions = [Execution(id=execution.decode(), job_id=run, connection=connection)
                  for run, ids in zip(runs, listed) for execution in ids]
    if not executions:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for execution in executions:
            pipe.exists(execution.key)
        held = pipe.execute()
    gone = [execution for execution, exists in zip(executions, held) if not exists]
    with connection.pipeline(transaction=False) as pipe:
        for execution in gone:
            pipe.zrem(ExecutionRegistry(execution.job_id, connection).key, execution.id)
        pipe.execute()
    return len(gone)


def new_run_id(job_id: int) -> str:
    """A fresh RQ job id for one run of a training job; recorded on its row before enqueueing."""
    return f"trad-{job_id}-{uuid.uuid4().hex[:12]}"


def enqueue_run(connection: redis_lib.Redis, settings: Settings, job_id: int, run_id: str) -> Job:
    """Put one run of a training job on the queue under the RQ job id `run_id`."""
    return training_queue(connection, settings).enqueue(
        RUN_JOB, job_id, job_id=run_id, job_timeout=settings.job_timeout, result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL, description=f"training job {job_id}")


def run_exists(connection: redis_lib.Redis, run_id: str | None) -> bool:
    """Whether Redis still knows this run (queued, running or finished)."""
    return bool(run_id) and Job.exists(run_id, connection=connection)


def set_cancel_flag(connection: redis_lib.Redis, settings: Settings, run_id: str) -> None:
    """Ask one run of a job to stop; its JobProgress sees this within a fraction of a second.

    Keyed by the run, not the job id: a later run of the job (resume) and a job of the same
    id in another database sharing this Redis are not touched by it.
    """
    connection.set(cancel_key(settings.redis_prefix, run_id), 1, ex=CANCEL_FLAG_TTL)


def kill_run(connection: redis_lib.Redis, run_id: str | None) -> bool:
    """The backstop of a stop: have the worker kill the run's work horse. False if it is not executing."""
    if not run_id:
        return False
    try:
        send_stop_job_command(connection, run_id)
        return True
    except (InvalidJobOperation, NoSuchJobError):
        return False
