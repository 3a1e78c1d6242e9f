"""What an alert's condition means: its validation and its verdict on one model's result.

Pure: no table, no network. `alert_eval` feeds it a result and, for a regression, the
model's previous values; it answers whether the rule fires for that result, or that it
cannot tell (no verdict: the rule's state then stays as it is).

- failure: fires when the result failed, resolves when one succeeds. A model the runner
  never ran (cancelled, or cut off by the Lambda deadline) says nothing about the model.
- threshold: fires while the metric is above (below) the value; a result without the
  metric (a failure, an unknown cost) gives no verdict.
- regression: fires when the metric is worse than the median of the baseline (the
  model's previous `baseline_runs` successful results) by more than `percent` %; worse is
  higher for times and cost, lower for speeds. No verdict until the baseline is complete.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

Kind = Literal["failure", "threshold", "regression"]
Metric = Literal["ttft_ms", "ttfo_ms", "output_speed_tps", "tokens_per_second", "itl_p99_ms", "cost"]

# Speeds get worse by falling; times and cost by rising.
LOWER_IS_WORSE: frozenset[str] = frozenset({"output_speed_tps", "tokens_per_second"})

MAX_THRESHOLD = 1e12
MIN_BASELINE_RUNS, MAX_BASELINE_RUNS, DEFAULT_BASELINE_RUNS = 3, 50, 5

# Error types of models the runner did not (fully) run: no verdict on the model itself.
NOT_RUN = frozenset({"cancelled", "deadline"})

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # kind → (required, allowed)
    "failure": (frozenset(), frozenset()),
    "threshold": (frozenset({"metric", "op", "value"}), frozenset({"metric", "op", "value"})),
    "regression": (frozenset({"metric", "percent"}), frozenset({"metric", "percent", "baseline_runs"})),
}


class Condition(BaseModel):
    """`{"kind": "failure"}`, `{"kind": "threshold", metric, op, value}` or
    `{"kind": "regression", metric, percent, baseline_runs=5}`. A 422 names the field at
    fault (`condition.op`), a field the kind does not use included."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    kind: Kind
    metric: Metric | None = None
    op: Literal["above", "below"] | None = None
    value: Annotated[float, Field(ge=0, le=MAX_THRESHOLD, allow_inf_nan=False)] | None = None
    percent: Annotated[float, Field(ge=1, le=1000, allow_inf_nan=False)] | None = None
    baseline_runs: Annotated[int, Field(ge=MIN_BASELINE_RUNS, le=MAX_BASELINE_RUNS)] = DEFAULT_BASELINE_RUNS

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> Condition:
        required, allowed = _FIELDS[self.kind]
        given = {name for name in self.model_fields_set if name != "kind" and getattr(self, name) is not None}
        for name in sorted(required - given):
            _refuse(name, f"is required for a {self.kind} condition")
        for name in sorted(given - allowed):
            _refuse(name, f"is not used by a {self.kind} condition")
        if self.kind == "regression" and self.metric in LOWER_IS_WORSE and (self.percent or 0) >= 100:
            _refuse("percent", f"must be below 100 for a speed: {self.metric} cannot fall by 100 % or more")
        return self

    def stored(self) -> dict[str, Any]:
        """The condition as stored and answered: its kind's fields only."""
        _required, allowed = _FIELDS[self.kind]
        return {"kind": self.kind, **{name: getattr(self, name) for name in sorted(allowed)}}


def _refuse(field: str, message: str) -> None:
    """A validation error located at `field` (so the 422 names `condition.<field>`)."""
    raise ValidationError.from_exception_data(
        "Condition",
        [InitErrorDetails(type=PydanticCustomError("condition_field", message), loc=(field,), input=None)],
    )


def from_stored(data: Mapping[str, Any]) -> Condition:
    return Condition.model_validate(dict(data))


# --- verdicts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether the rule fires for this result, and the figures that say why."""

    firing: bool
    metric: str
    value: Any  # the metric's value; for a failure, the result's error type (None if it succeeded)
    threshold: float | None = None
    baseline: float | None = None
    detail: str | None = None  # a failure's error message


def metric_value(result: Mapping[str, Any], metric: str) -> float | None:
    """The result's figure for `metric`, or None when it has none worth judging (a failed
    result, a cost the price table does not know)."""
    if not result.get("success"):
        return None
    if metric == "cost" and result.get("cost_known") is False:
        return None
    value = result.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def judge(condition: Condition, result: Mapping[str, Any], baseline: Sequence[float] = ()) -> Verdict | None:
    """The rule's verdict on one model's result; None when the result cannot tell.

    `baseline`: the model's previous values of the condition's metric, newest first (only
    a regression reads it, and only its first `baseline_runs`)."""
    if condition.kind == "failure":
        return _failure(result)
    assert condition.metric is not None
    value = metric_value(result, condition.metric)
    if value is None:
        return None
    if condition.kind == "threshold":
        assert condition.value is not None
        above = value > condition.value
        return Verdict(above if condition.op == "above" else value < condition.value,
                       condition.metric, value, threshold=condition.value)
    assert condition.percent is not None
    if len(baseline) < condition.baseline_runs:
        return None
    median = statistics.median(baseline[: condition.baseline_runs])
    factor = condition.percent / 100
    if condition.metric in LOWER_IS_WORSE:
        worse = value < median * (1 - factor)
    else:
        worse = value > median * (1 + factor)
    return Verdict(worse, condition.metric, value, baseline=round(median, 6))


def _failure(result: Mapping[str, Any]) -> Verdict | None:
    if result.get("success"):
        return Verdict(False, "failure", None)
    error_type = result.get("error_type")
    if error_type in NOT_RUN:
        return None
    detail = str(result.get("error") or "")[:300] or None
    return Verdict(True, "failure", error_type or "error", detail=detail)
