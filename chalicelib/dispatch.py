"""Starting runners: an asynchronous Lambda `Invoke` of `RUNNER_FUNCTION_NAME` per job.

The same boto3 call everywhere: on AWS it queues an event for the runner function; in the dev
stack `AWS_ENDPOINT_URL_LAMBDA` points at its Invoke endpoint. A failed invoke is not an
error to the caller: the job stays pending, and the tick re-dispatches it after the grace.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from chalicelib import aws_clients, config, jobs, schedules

log = logging.getLogger(__name__)

# Invokes are I/O: 32 in flight dispatch 1,000 jobs in a few seconds, not minutes.
MAX_PARALLEL_INVOKES = 32

def lambda_client() -> Any:
    from botocore.config import Config

    config = Config(max_pool_connections=MAX_PARALLEL_INVOKES, retries={"mode": "standard"})
    return aws_clients.client("lambda", config=config)


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
