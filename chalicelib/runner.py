"""The runner: one job, start to finish (DESIGN §4).

It acts only on a job it moved to `running` itself (`jobs.start`): a duplicate or late
delivery, or a job whose user has no free slot, returns at once. Then it streams every
model — providers in parallel, one provider's models in sequence, context tier 0 — sends
each result as it lands, saves the run, sets the schedule's `last_run` (scheduled runs),
finishes the job (releasing the slot) and starts the user's next queued job.

Two job types share that one path and differ only in their plan: a schedule's job
(`scheduled_benchmark`, ticked or triggered) runs each model once with no warm-up (the
seed's rules); an on-demand `benchmark` runs each model `runs` times in sequence, after
one unmeasured warm-up request when asked (it reaches the provider; its result is dropped).

It stops on its own before the Lambda deadline: models it could not finish are recorded as
errors and the job fails with a message saying so, instead of the function being killed
mid-write (which the tick would only notice when the lease runs out).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from pynamodb.exceptions import DoesNotExist

from chalicelib import (
    alert_eval,
    benchmarks,
    catalog,
    clock,
    config,
    dispatch,
    history,
    jobs,
    keys,
    logs,
    notify,
    schedules,
    user_providers,
    writes,
)
from chalicelib.providers import ModelTarget, RunSettings, run_model
from chalicelib.providers import errors as error_types
from chalicelib.providers.engine import failure_record
from chalicelib.jobs.watch import Watch
from chalicelib.tables import JobModel, ScheduleModel

log = logging.getLogger(__name__)


def handle(event: Any, remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
    """The Lambda entry: `{"job_id": "..."}`. Returns what happened, for logs and tests."""
    job_id = event.get("job_id") if isinstance(event, dict) else None
    if not isinstance(job_id, str) or not job_id:
        log.warning("runner: ignoring an event without a job_id")
        return {"status": "ignored"}
    job = jobs.start(job_id)
    if job is None:
        return {"status": "skipped", "job_id": job_id}
    logs.bind(user_id=job.user_id, schedule_id=job.schedule_id)
    deadline = _deadline(remaining_ms)
    try:
        status, result_ref, error = _run(job, deadline)
    except Exception as err:
        log.exception("runner: job %s failed", job_id)
        status, result_ref, error = jobs.FAILED, None, f"Internal error ({type(err).__name__})"
    following = jobs.finish(job_id, status, result_ref=result_ref, error=error)
    if following is not None:
        dispatch.invoke_runner(following.job_id)
    return {"status": status, "job_id": job_id, "result_ref": result_ref, "error": error}


def _deadline(remaining_ms: Callable[[], int] | None) -> float | None:
    """A `time.monotonic()` moment to stop by: the Lambda's remaining time less a margin
    for saving the run and finishing the job."""
    if remaining_ms is None:
        return None
    margin = config.float_setting("RUNNER_DEADLINE_MARGIN_S", 20.0)
    return time.monotonic() + remaining_ms() / 1000.0 - margin


# --- one job ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    names: list[str]  # every model asked for, in the asked order
    targets: list[ModelTarget]
    unresolved: dict[str, dict[str, Any]]  # model name → failure record
    settings: RunSettings
    keyed: frozenset[str]  # providers that refuse a request without the user's key
    runs: int = 1
    warmup: bool = False


def _run(job: JobModel, deadline: float | None) -> tuple[str, str | None, str | None]:
    manual = (job.params or {}).get("trigger") == "manual"
    planned = _plan_job(job, manual)
    if isinstance(planned, str):
        return jobs.CANCELLED, None, planned
    plan, schedule = planned
    _send(job, "benchmark_init", data={
        "targets": plan.names, "runs": plan.runs, "context_tiers": [0], "max_tokens": plan.settings.max_tokens,
    })
    watch = Watch(job.job_id, deadline)
    watch.start()
    try:
        results = _run_models(job, plan, watch)
    finally:
        watch.stop()
    if watch.cancelled:
        return jobs.CANCELLED, None, "Cancelled by the user"
    metadata = _metadata(job, plan, schedule, manual)
    run_id = history.save(history.NewRun(
        user_id=job.user_id,
        job_id=job.job_id,
        started_at=job.started_at or clock.now_iso(),
        prompt=plan.settings.prompt,
        max_tokens=plan.settings.max_tokens,
        temperature=plan.settings.temperature,
        results=results,
        metadata=metadata,
        source="schedule" if schedule else "manual",
        schedule_id=schedule.schedule_id if schedule else None,
    ))
    if schedule is not None:
        _record_last_run(schedule, manual, schedules.last_result(run_id, results))
    try:
        _after_save(job, run_id, results, metadata)
    except Exception:  # the run is saved: what reacts to it must not fail the benchmark
        log.exception("runner: after-save of run %s (job %s) failed", run_id, job.job_id)
    return _ending(results, run_id, plan.runs)


def _plan_job(job: JobModel, manual: bool) -> tuple[_Plan, ScheduleModel | None] | str:
    """What to run, and the schedule when it is a schedule's job; or why the job is
    cancelled before running anything."""
    if job.job_type == benchmarks.JOB_TYPE:
        asked = benchmarks.from_params(job.params)
        settings = RunSettings(prompt=asked.prompt, max_tokens=asked.max_tokens, temperature=asked.temperature)
        return _plan(job.user_id, asked.models, settings, runs=asked.runs, warmup=asked.warmup), None
    schedule = _schedule_still_wanted(job, manual)
    if isinstance(schedule, str):
        return schedule
    settings = RunSettings(
        prompt=schedule.prompt,
        max_tokens=int(schedule.max_tokens),
        temperature=float(schedule.temperature),
    )
    return _plan(job.user_id, list(schedule.models), settings), schedule


def _ending(results: list[dict[str, Any]], run_id: str, runs: int) -> tuple[str, str | None, str | None]:
    """The job's status once its run is saved: failed when the deadline cut models off or
    nothing succeeded, else done."""
    unit = "models" if runs == 1 else "model runs"
    unfinished = [r["model"] for r in results if r.get("error_type") == error_types.DEADLINE]
    if unfinished:
        return jobs.FAILED, run_id, (
            f"Stopped before the Lambda deadline: {len(unfinished)} of {len(results)} {unit} "
            f"did not finish ({', '.join(dict.fromkeys(unfinished))})"
        )
    if results and not any(r["success"] for r in results):
        return jobs.FAILED, run_id, f"All {len(results)} {unit} failed"
    return jobs.DONE, run_id, None


def _after_save(job: JobModel, run_id: str, results: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
    """The one place that reacts to a saved run, whatever its job type. It runs after the
    run is stored (and a scheduled run's `last_run` stamped) and before the job ends;
    `results` are the saved ones, warm-ups excluded. Alert rules judge the run here
    (scheduled runs only; bounded by ALERT_DELIVERY_BUDGET_S, never raises)."""
    alert_eval.evaluate(
        job.user_id, {"id": run_id, "source": metadata["source"], "results": results, "metadata": metadata}
    )


def _schedule_still_wanted(job: JobModel, manual: bool) -> ScheduleModel | str:
    """The schedule, or why the job is cancelled: deleted, or disabled before its run."""
    try:
        schedule = ScheduleModel.get(job.user_id, job.schedule_id, consistent_read=True)
    except DoesNotExist:
        return "Schedule was deleted before the run started"
    if not schedule.enabled and not manual:
        return "Schedule was disabled before the run started"
    return schedule


def _plan(user_id: str, names: list[str], settings: RunSettings, *, runs: int = 1, warmup: bool = False) -> _Plan:
    providers = user_providers.providers_for(user_id)
    targets: list[ModelTarget] = []
    unresolved: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            targets.append(catalog.resolve(name, providers))
        except Exception as err:  # a user provider deleted since the models were checked
            target = ModelTarget(name.partition("/")[0], "openai", "", name, name)
            unresolved[name] = failure_record(target, error_types.UNKNOWN_MODEL, getattr(err, "error", str(err)))
    keyed = frozenset(key for key, provider in providers.items() if provider.requires_key)
    return _Plan(list(names), targets, unresolved, settings, keyed, runs, warmup)


def _run_models(job: JobModel, plan: _Plan, watch: "Watch") -> list[dict[str, Any]]:
    """Providers in parallel, each provider's models one after another, each model's runs
    one after another (after its warm-up). Returns one result per model and run, in the
    asked model order, runs ascending."""
    total = len(plan.names) * plan.runs
    results: dict[tuple[str, int], dict[str, Any]] = {}
    lock = threading.Lock()

    def record(result: dict[str, Any], run: int) -> None:
        result = {**result, "run": run, "runs": plan.runs}
        with lock:
            results[(result["model"], run)] = result
            done = len(results)
        _send(job, "benchmark_result", data=result)
        if plan.runs == 1:
            detail = f"{done}/{total} models: {result['model']}"
        else:
            detail = f"{done}/{total} model runs: {result['model']} run {run}/{plan.runs}"
        if jobs.progress(job.job_id, round(100 * done / total, 1), detail):
            watch.cancel()

    for failure in plan.unresolved.values():
        for run in range(1, plan.runs + 1):
            record(failure, run)
    groups: dict[str, list[ModelTarget]] = {}
    for target in plan.targets:
        groups.setdefault(target.provider_key, []).append(target)
    api_keys = {key: _api_key(job.user_id, key, targets[0].base_url) for key, targets in groups.items()}

    def run_group(targets: list[ModelTarget]) -> None:
        for target in targets:
            api_key = api_keys[target.provider_key]
            if plan.warmup:
                refused, addresses = _preflight(target, api_key, plan.keyed, watch)
                if refused is None:  # unmeasured: its result is dropped
                    run_model(target, plan.settings, api_key.value, should_stop=watch.should_stop,
                              deadline=watch.deadline, connect_to=addresses)
            for run in range(1, plan.runs + 1):
                record(_run_one(target, plan, api_key, watch), run)

    if groups:
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            for future in [pool.submit(run_group, group) for group in groups.values()]:
                future.result()
    return [results[(name, run)] for name in plan.names for run in range(1, plan.runs + 1) if (name, run) in results]


def _run_one(target: ModelTarget, plan: _Plan, api_key: "_Key", watch: "Watch") -> dict[str, Any]:
    refused, addresses = _preflight(target, api_key, plan.keyed, watch)
    if refused is not None:
        return refused
    result = run_model(target, plan.settings, api_key.value, should_stop=watch.should_stop,
                       deadline=watch.deadline, connect_to=addresses)
    if result.get("error_type") == error_types.TIMEOUT and watch.out_of_time():
        result = {**result, "error_type": error_types.DEADLINE,
                  "error": f"[{error_types.DEADLINE}] Stopped: the runner reached its Lambda deadline mid-stream"}
    return result


def _preflight(
    target: ModelTarget, api_key: "_Key", keyed: frozenset[str], watch: "Watch"
) -> tuple[dict[str, Any] | None, list[str]]:
    """Why `target` must not be requested now (as its failure record), or None and the
    addresses the request may connect to."""
    if watch.cancelled:
        return failure_record(target, error_types.CANCELLED, "Cancelled before this model ran"), []
    if watch.out_of_time():
        return failure_record(target, error_types.DEADLINE, "Not run: the runner stopped before its Lambda deadline"), []
    if api_key.problem:
        return failure_record(target, error_types.AUTH_FAILED, api_key.problem), []
    if api_key.value is None and target.provider_key in keyed:
        return failure_record(target, error_types.AUTH_FAILED, f"No API key set for provider {target.provider_key!r}"), []
    addresses, endpoint_problem = _endpoint_problem(target)
    if endpoint_problem:
        return failure_record(target, error_types.NETWORK, endpoint_problem), []
    return None, addresses


@dataclass(frozen=True)
class _Key:
    value: str | None
    problem: str | None = None


def _api_key(user_id: str, provider_key: str, base_url: str) -> _Key:
    """The user's key for a provider; a stored key that no longer decrypts (tampered with,
    or the KMS key changed) fails that provider's models clearly instead of running keyless."""
    try:
        return _Key(keys.get_api_key(user_id, provider_key, base_url))
    except Exception as err:
        log.warning("runner: key for provider %s could not be read: %s", provider_key, err, exc_info=True)
        return _Key(None, f"The stored API key for provider {provider_key!r} could not be decrypted")


def _endpoint_problem(target: ModelTarget) -> tuple[list[str], str | None]:
    """The addresses a user endpoint may be connected to, or why it may not be.

    User endpoints are re-checked at request time (DNS may have changed since saving),
    and the request then goes only to an address this check vetted: resolving the name
    again could answer an internal address (DNS rebinding). No addresses (built-ins,
    or private endpoints allowed) means the engine resolves the name itself.
    """
    if target.provider_key in catalog.BUILTIN_KEYS:
        return [], None
    try:
        return user_providers.check_endpoint(target.base_url), None
    except Exception as err:
        return [], getattr(err, "error", None) or "Endpoint refused"


def _metadata(job: JobModel, plan: _Plan, schedule: ScheduleModel | None, manual: bool) -> dict[str, Any]:
    """DESIGN §3's metadata; an on-demand run also keeps how it ran (`runs`, `warmup`) so
    "Run again" repeats it."""
    if schedule is None:
        return {"source": "manual", "job_id": job.job_id, "runs": plan.runs, "warmup": plan.warmup}
    metadata = {
        "source": "schedule",
        "schedule_id": schedule.schedule_id,
        "schedule_name": schedule.name,
        "job_id": job.job_id,
    }
    if manual:
        metadata["trigger"] = "manual"
    return metadata


def _record_last_run(schedule: ScheduleModel, manual: bool, last_result: dict[str, Any]) -> None:
    """`last_run` = now and the run at a glance; after a manual trigger the schedule is
    re-phased from now (the seed's rule), while ticks keep the phase they already advanced."""
    now = clock.now()
    actions = [ScheduleModel.last_run.set(clock.iso(now)), ScheduleModel.last_result.set(last_result)]
    if manual:
        actions.append(ScheduleModel.next_run.set(clock.iso(schedules.first_run(now, int(schedule.interval_hours)))))
    # False: deleted during the run; the run is saved, there is nothing to stamp.
    writes.update_if(
        ScheduleModel(schedule.user_id, schedule.schedule_id),
        actions,
        ScheduleModel.schedule_id.exists(),
    )


def _send(job: JobModel, event_type: str, **fields: Any) -> None:
    notify.send_to_user(job.user_id, {"type": event_type, "job_id": job.job_id, **fields})
