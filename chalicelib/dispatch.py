"""Starting runners: an asynchronous Lambda `Invoke` of `RUNNER_FUNCTION_NAME` per job.

The same boto3 call everywhere: on AWS it queues an event for the runner function; in the dev
stack `AWS_ENDPOINT_URL_LAMBDA` points at its Invoke endpoint. A failed invoke is not an
error to the caller: the job stays pending, and the tick re-dispatches it after the grace.
"""
from __future__ import annotations

import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from chalicelib import aws_clients, config, jobs, schedules

log = logging.getLogger(__name__)

# Invokes are I/O: 32 in flight dispatch 1,000 jobs in a few seconds, not minutes.
MAX_PARALLEL_INVOKES = 32


def lambda_client() -> Any:
    return aws_clients.client("lambda", config=_client_config())


@functools.cache
def _client_config() -> Any:
    """Built once: the tick asks for the client per job, and a botocore `Config` costs
    about as much CPU as the invoke it configures."""
    from botocore.config import Config

    # The tick's claim workers and the sweep's both invoke: one connection each.
    return Config(max_pool_connections=64, retries={"mode": "standard"})


def invoke_runner(job_id: str) -> bool:
    """Queue one runner invocation; False (logged) when Lambda refused it."""
    try:
        lambda_client().invoke(
            FunctionName=config.runner_function_name(),
            InvocationType="Event",
            Payload=json.dumps({"job_id": job_id}).encode(),
        )
    except Exception as err:  # the tick retries lost dispatches; never fail the caller
        log.warning("dispatch of job %s failed: %s", job_id, err, exc_info=True)
        return False
    return True


def trigger(user_id: str, schedule_id: str) -> str:
    """Run a schedule now: submit its job and dispatch it; the job id. The runner re-phases
    the schedule after the run (the seed's rule for triggers)."""
    schedules.get(user_id, schedule_id)  # 404 for a missing or another user's schedule
    job = jobs.submit(
        schedules.JOB_TYPE,
        user_id,
        {"schedule_id": schedule_id, "trigger": "manual"},
        schedule_id=schedule_id,
    )
    invoke_runner(job.job_id)
    return job.job_id


def invoke_runners(job_ids: Iterable[str]) -> int:
    """Invoke the runner for many jobs at once; returns how many were accepted."""
    ids = list(job_ids)
    if not ids:
        return 0
    if len(ids) == 1:
        return int(invoke_runner(ids[0]))
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_INVOKES, len(ids))) as pool:
        return sum(pool.map(invoke_runner, ids))
