"""Benchmarks on demand (`POST /api/benchmarks`): a job of type `benchmark`.

The job goes through the same registry as a schedule's (`jobs.submit`: it counts toward
the user's concurrency limit, queues when the limit is reached, can be cancelled, sends
the same events) and is run by the same runner Lambda; its parameters travel in the job.
The body follows the schedule body's rules field by field (same types, same limits, same
422s) and adds `runs` and `warmup`.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chalicelib import dispatch, jobs, schedules

JOB_TYPE = "benchmark"
MAX_RUNS = 10

Runs = Annotated[int, Field(ge=1, le=MAX_RUNS)]


class BenchmarkCreate(schedules.SettingsBody):
    """`{models, prompt, max_tokens=512, temperature=0.7, runs=1, warmup=false}`: each
    model runs `runs` times in sequence, after one unmeasured request when `warmup`."""

    models: schedules.Models
    prompt: schedules.Prompt
    max_tokens: schedules.MaxTokens = 512
    temperature: schedules.Temperature = 0.7
    runs: Runs = 1
    warmup: bool = False


def submit(user_id: str, body: BenchmarkCreate) -> str:
    """Queue the benchmark and start a runner for it; the job id, at once."""
    schedules.check_models(user_id, body.models)
    job = jobs.submit(JOB_TYPE, user_id, body.model_dump())
    dispatch.invoke_runner(job.job_id)
    return job.job_id


def from_params(params: dict[str, Any] | None) -> BenchmarkCreate:
    """The benchmark a job carries (validated again: a job item is data, and the rules
    may have tightened since it was queued)."""
    return BenchmarkCreate.model_validate(params or {}, strict=False)
