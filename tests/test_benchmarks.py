"""Benchmarks on demand: `POST /api/benchmarks` → a `benchmark` job through the registry,
run by the runner (runs × models, optional warm-up), saved as a manual run with a summary.

Lambda is the `lambda_invokes` fixture; providers are the loopback server of
`devstack/fake_providers.py`, which records every request it gets.
"""
from __future__ import annotations

import uuid

import pytest

from chalicelib import benchmarks, jobs, tick
from chalicelib.tables import JobModel, RunModel
from tests.items import slot, status_of


@pytest.fixture(autouse=True)
def fast_runner(monkeypatch):
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the providers are on loopback
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT_S", "5")


@pytest.fixture
def tester(events, alice, provider_server):
    """Alice, with her own providers on the loopback server (prices set)."""
    for key, kind in (("fake", "openai"), ("anth", "anthropic")):
        status, data = alice.put(f"/api/providers/{key}", {
            "kind": kind, "base_url": provider_server.base_url_for(kind),
            "models": [{"id": m, "input_cost_per_mtok": 1.0, "output_cost_per_mtok": 2.0}
                       for m in ("t", "err-500", "norole")],
        })
        assert status == 200, data
    return alice


def unique_prompt() -> str:
    """A prompt no other test sends, to count this test's requests on the shared server."""
    return f"Say hello ({uuid.uuid4().hex})."


def requests_with(server, prompt: str) -> list:
    return [r for r in list(server.requests) if prompt in str(r.body)]


def only_run(user_id: str) -> RunModel:
    [run] = list(RunModel.query(user_id))
    return run


# --- the route --------------------------------------------------------------------------------


def test_post_answers_at_once_with_a_benchmark_job_and_dispatches_it(tester, lambda_invokes):
    status, data = tester.post("/api/benchmarks", {"models": ["fake/t"], "prompt": "hi"})

    assert status == 200 and data == {"status": "ok", "job_id": data["job_id"]}
    job = JobModel.get(data["job_id"])
    assert job.job_type == "benchmark" and job.status == "pending" and job.schedule_id is None
    assert job.params == {"models": ["fake/t"], "prompt": "hi", "max_tokens": 512,
                          "temperature": 0.7, "runs": 1, "warmup": False}
    assert lambda_invokes.job_ids == [data["job_id"]]
    assert list(RunModel.query(tester.id)) == []  # nothing ran before the answer


@pytest.mark.parametrize(
    "change, field",
    [
        ({"runs": 0}, "runs"),
        ({"runs": 11}, "runs"),
        ({"runs": "2"}, "runs"),
        ({"runs": 2.5}, "runs"),
        ({"warmup": "yes"}, "warmup"),
        ({"warmup": 1}, "warmup"),
        ({"models": []}, "models"),
        ({"models": [f"fake/m{i}" for i in range(21)]}, "models"),
        ({"models": "fake/t"}, "models"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 50_001}, "prompt"),
        ({"prompt": "😀" * 25_001}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 128_001}, "max_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"interval_hours": 1}, "interval_hours"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_bodies_are_422s_naming_the_field(tester, lambda_invokes, change, field):
    body = {"models": ["fake/t"], "prompt": "hi", **change}
    status, data = tester.post("/api/benchmarks", body)
    assert status == 422, data
    assert data["detail"][0]["field"] == field
    assert data["error"].startswith(f"Invalid field '{field}'")
    assert lambda_invokes.payloads == [] and JobModel.count() == 0


@pytest.mark.parametrize("change", [{"max_tokens": 0}, {"temperature": -1}, {"models": []}, {"prompt": ""}])
def test_validation_answers_exactly_as_for_schedules(tester, lambda_invokes, change):
    base = {"models": ["fake/t"], "prompt": "hi"}
    schedule_answer = tester.post("/api/schedules", {**base, "name": "n", "interval_hours": 1, **change})
    benchmark_answer = tester.post("/api/benchmarks", {**base, **change})
    assert benchmark_answer == schedule_answer and benchmark_answer[0] == 422


@pytest.mark.parametrize("model", ["nope/x", "fake/not-listed", "bad model!"])
def test_an_unknown_model_is_a_422_naming_it(tester, lambda_invokes, model):
    status, data = tester.post("/api/benchmarks", {"models": ["fake/t", model], "prompt": "hi"})
    assert status == 422 and data["detail"][0]["field"] == "models"
    assert model in data["error"]
    assert JobModel.count() == 0


def test_a_model_listed_twice_is_refused(tester, lambda_invokes):
    status, data = tester.post("/api/benchmarks", {"models": ["fake/t", "fake/t"], "prompt": "hi"})
    assert status == 422 and data["detail"][0]["model"] == "fake/t"


def test_anonymous_callers_get_401(anonymous):
    status, data = anonymous.post("/api/benchmarks", {"models": ["fake/t"], "prompt": "hi"})
    assert status == 401 and "error" in data


def test_benchmarks_count_toward_the_limit_queue_and_can_be_cancelled(tester, lambda_invokes):
    body = {"models": ["fake/t"], "prompt": "hi"}
    first = tester.post("/api/benchmarks", body)[1]["job_id"]
    jobs.start(first)  # running: the user's only slot (default limit 1) is taken
    second = tester.post("/api/benchmarks", body)[1]["job_id"]

    assert status_of(second) == "queued" and slot(tester.id)["active"] == 1
    assert tester.post(f"/api/jobs/{second}/cancel") == (200, {"status": "ok"})
    assert status_of(second) == "cancelled"
    assert lambda_invokes.job_ids == [first, second]


# --- the runner -------------------------------------------------------------------------------


def test_runs_times_models_with_warm_up_reach_the_provider_and_only_measured_runs_are_saved(
    tester, lambda_invokes, provider_server, recorded_events
):
    prompt = unique_prompt()
    status, data = tester.post("/api/benchmarks", {
        "models": ["fake/t", "anth/t", "fake/norole"], "prompt": prompt,
        "max_tokens": 16, "temperature": 0, "runs": 3, "warmup": True,
    })
    assert status == 200
    [outcome] = lambda_invokes.run_pending()

    assert outcome["status"] == "done"
    sent = requests_with(provider_server, prompt)
    # one warm-up + 3 measured requests per model, each model's in sequence on its provider
    assert len(sent) == 3 * (1 + 3)
    openai_models = [r.body["model"] for r in sent if r.kind == "openai"]
    assert openai_models == ["t"] * 4 + ["norole"] * 4
    run = only_run(tester.id)
    assert [(r["model"], r["run"], r["runs"]) for r in run.results] == [
        (model, n, 3) for model in ("fake/t", "anth/t", "fake/norole") for n in (1, 2, 3)
    ]
    assert all(r["success"] for r in run.results)
    assert run.source == "manual" and run.status == "ok" and run.schedule_key is None
    assert run.metadata == {"source": "manual", "job_id": data["job_id"], "runs": 3, "warmup": True}
    assert run.prompt == prompt and int(run.max_tokens) == 16
    assert set(run.summary) == {"fake/t", "anth/t", "fake/norole"}
    assert run.summary["fake/t"]["n"] == 3 and run.summary["fake/t"]["successes"] == 3
    assert JobModel.get(data["job_id"]).result_ref == run.run_id

    mine = recorded_events.messages(user_id=tester.id)
    [init] = [m for m in mine if m["type"] == "benchmark_init"]
    assert init["data"] == {"targets": ["fake/t", "anth/t", "fake/norole"], "runs": 3,
                            "context_tiers": [0], "max_tokens": 16}
    results = [m["data"] for m in mine if m["type"] == "benchmark_result"]
    assert len(results) == 9 and sorted((r["model"], r["run"]) for r in results) == sorted(
        (r["model"], r["run"]) for r in run.results)
    progress = [m for m in mine if m["type"] == "job_progress"]
    assert [p["progress_pct"] for p in progress][-1] == 100
    assert progress[-1]["progress_detail"].startswith("9/9 model runs")


def test_without_warm_up_every_request_is_a_measured_run(tester, lambda_invokes, provider_server):
    prompt = unique_prompt()
    tester.post("/api/benchmarks", {"models": ["fake/t"], "prompt": prompt, "runs": 2})
    lambda_invokes.run_pending()
    assert len(requests_with(provider_server, prompt)) == 2
    assert [r["run"] for r in only_run(tester.id).results] == [1, 2]


def test_the_summary_is_over_the_runs_and_failures_make_the_run_partial(tester, lambda_invokes):
    tester.post("/api/benchmarks", {"models": ["fake/t", "fake/err-500"], "prompt": "hi", "runs": 2})
    [outcome] = lambda_invokes.run_pending()

    assert outcome["status"] == "done"  # something succeeded
    run = only_run(tester.id)
    assert run.status == "partial"
    ok, failed = run.summary["fake/t"], run.summary["fake/err-500"]
    ttfts = sorted(r["ttft_ms"] for r in run.results if r["model"] == "fake/t")
    assert ok["n"] == 2 and ok["successes"] == 2
    assert ok["ttft_ms"]["p50"] == round((ttfts[0] + ttfts[1]) / 2, 2)
    assert ok["cost_total"] == round(sum(r["cost"] for r in run.results if r["model"] == "fake/t"), 8)
    assert failed == {"n": 2, "successes": 0, "ttft_ms": {"p50": None, "p90": None},
                      "output_speed_tps": {"p50": None, "p90": None},
                      "itl_p50_ms": {"p50": None, "p90": None}, "itl_p99_ms": {"p50": None, "p90": None},
                      "cost_total": 0.0, "cost_known": True}


def test_a_benchmark_where_everything_fails_ends_failed_with_its_run_saved(tester, lambda_invokes):
    status, data = tester.post("/api/benchmarks", {"models": ["fake/err-500"], "prompt": "hi", "runs": 2})
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "failed" and outcome["error"] == "All 2 model runs failed"
    assert only_run(tester.id).status == "failed"


def test_a_cancelled_benchmark_saves_nothing_and_frees_the_slot(tester, lambda_invokes, monkeypatch):
    from chalicelib import runner

    status, data = tester.post("/api/benchmarks", {"models": ["fake/t"], "prompt": "hi", "runs": 3})
    job_id = data["job_id"]
    original = runner._run_one

    def cancel_during_first_run(*args, **kwargs):
        jobs.cancel(job_id, tester.id)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_one", cancel_during_first_run)
    [outcome] = lambda_invokes.run_pending()
    assert outcome["status"] == "cancelled"
    assert list(RunModel.query(tester.id)) == [] and slot(tester.id)["active"] == 0


def test_a_provider_removed_after_submitting_fails_each_run_of_its_models(tester, lambda_invokes):
    tester.post("/api/benchmarks", {"models": ["fake/t", "anth/t"], "prompt": "hi", "runs": 2})
    assert tester.delete("/api/providers/anth")[0] == 200
    lambda_invokes.run_pending()
    run = only_run(tester.id)
    gone = [r for r in run.results if r["model"] == "anth/t"]
    assert [(r["run"], r["error_type"]) for r in gone] == [(1, "unknown_model"), (2, "unknown_model")]
    assert run.status == "partial"


def test_a_scheduled_run_keeps_the_seeds_rules_and_gets_the_same_summary(tester, clock, lambda_invokes, provider_server):
    prompt = unique_prompt()
    status, data = tester.post("/api/schedules", {
        "name": "Hourly", "models": ["fake/t", "anth/t"], "prompt": prompt, "interval_hours": 1,
    })
    schedule_id = data["id"]
    clock.advance(hours=1)
    tick.run()
    lambda_invokes.run_pending()

    assert len(requests_with(provider_server, prompt)) == 2  # one request per model, no warm-up
    run = only_run(tester.id)
    assert [(r["run"], r["runs"]) for r in run.results] == [(1, 1), (1, 1)]
    assert run.source == "schedule" and run.status == "ok"
    assert run.schedule_id == schedule_id and run.schedule_key == f"{tester.id}#{schedule_id}"
    assert {model: s["n"] for model, s in run.summary.items()} == {"fake/t": 1, "anth/t": 1}
    assert run.summary["fake/t"]["ttft_ms"]["p50"] == run.results[0]["ttft_ms"]


def test_the_after_save_hook_sees_the_saved_run_and_cannot_fail_the_job(tester, lambda_invokes, monkeypatch):
    from chalicelib import runner

    seen = []

    def hook(job, run_id, results, metadata):
        seen.append((job.job_id, run_id, [r["run"] for r in results], RunModel.get(job.user_id, run_id).run_id))
        raise RuntimeError("alert evaluation broke")

    monkeypatch.setattr(runner, "_after_save", hook)
    status, data = tester.post("/api/benchmarks", {"models": ["fake/t"], "prompt": "hi", "runs": 2, "warmup": True})
    [outcome] = lambda_invokes.run_pending()

    assert outcome["status"] == "done"
    assert seen == [(data["job_id"], outcome["result_ref"], [1, 2], outcome["result_ref"])]


def test_params_of_a_queued_job_are_validated_again_by_the_runner():
    with pytest.raises(Exception):
        benchmarks.from_params({"models": ["fake/t"], "prompt": "hi", "runs": 50})
    assert benchmarks.from_params({"models": ["fake/t"], "prompt": "hi", "temperature": 1}).temperature == 1.0
