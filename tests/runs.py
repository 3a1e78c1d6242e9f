"""Saving runs as the runner does (through `history.save`), for the history, stats and export
tests: results with chosen metrics, at chosen times, scheduled or manual."""
from __future__ import annotations

import itertools
from typing import Any

from chalicelib import history

_job_numbers = itertools.count(1000)


def result(model: str = "demo/fast", *, ttft: float = 100.0, speed: float = 50.0, itl_p99: float = 10.0,
           cost: float = 0.001, provider: str = "demo", **extra: Any) -> dict[str, Any]:
    """A successful result record carrying the metrics statistics read."""
    return {"model": model, "provider": provider, "run": 1, "runs": 1, "success": True,
            "ttft_ms": ttft, "output_speed_tps": speed, "itl_p50_ms": itl_p99 / 2, "itl_p99_ms": itl_p99,
            "cost": cost, "error_type": None, "error": None, **extra}


def failure(model: str = "demo/fast", *, provider: str = "demo", error: str = "[http_500] boom") -> dict[str, Any]:
    return {"model": model, "provider": provider, "run": 1, "runs": 1, "success": False,
            "ttft_ms": None, "output_speed_tps": None, "itl_p50_ms": None, "itl_p99_ms": None,
            "cost": 0.0, "error_type": "http_500", "error": error}


def run_at(user_id: str, when: str, *, results: list | None = None, schedule_id: str | None = None,
           schedule_name: str = "S", trigger: str | None = None) -> str:
    """Save a run that started at `when` (ISO, Z); scheduled when `schedule_id` is given."""
    job_id = f"{next(_job_numbers):032x}"
    if schedule_id:
        metadata = {"source": "schedule", "schedule_id": schedule_id, "schedule_name": schedule_name, "job_id": job_id}
        if trigger:
            metadata["trigger"] = trigger
    else:
        metadata = {"source": "manual", "job_id": job_id}
    return history.save(history.NewRun(
        user_id=user_id, job_id=job_id, started_at=when, prompt="p", max_tokens=8, temperature=0.5,
        results=results if results is not None else [result()], metadata=metadata,
        source=metadata["source"], schedule_id=schedule_id,
    ))


def at(day: int, hour: int, minute: int = 0) -> str:
    """A run time in November 2026."""
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00.000000Z"
