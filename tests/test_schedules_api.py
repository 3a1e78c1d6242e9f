"""The schedule API of DESIGN §3: the seed's bodies, defaults, validation, and isolation."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.tables import ScheduleModel

SEED_CREATE = {
    "name": "Daily GPT vs Claude",
    "models": ["gpt-4o-mini", "claude-3-5-haiku-latest"],
    "prompt": "Explain quantum computing in one paragraph.",
    "max_tokens": 512,
    "temperature": 0.7,
    "interval_hours": 24,
}

SCHEDULE_FIELDS = {
    "id", "name", "prompt", "models", "models_json", "max_tokens", "temperature",
    "interval_hours", "enabled", "last_run", "last_result", "next_run", "created_at",
}


def create(api, **overrides):
    status, data = api.post("/api/schedules", {**SEED_CREATE, **overrides})
    assert status == 200, data
    return data["schedule"]


def test_create_answers_ok_id_and_schedule(clock, alice):
    status, data = alice.post("/api/schedules", SEED_CREATE)
    assert status == 200
    assert data["status"] == "ok"
    schedule = data["schedule"]
    assert data["id"] == schedule["id"]
    assert set(schedule) == SCHEDULE_FIELDS
    assert schedule["models"] == schedule["models_json"] == SEED_CREATE["models"]
    assert schedule["enabled"] is True and schedule["last_run"] is None and schedule["last_result"] is None
    assert schedule["created_at"] == "2026-11-30T09:00:00.000000Z"
    assert schedule["next_run"] == "2026-12-01T09:00:00.000000Z"  # now + interval


def test_defaults_are_512_tokens_and_temperature_0_7(alice):
    body = {k: v for k, v in SEED_CREATE.items() if k not in ("max_tokens", "temperature")}
    status, data = alice.post("/api/schedules", body)
    assert status == 200
    assert data["schedule"]["max_tokens"] == 512
    assert data["schedule"]["temperature"] == 0.7


def test_crud_round_trip(alice):
    created = create(alice)
    status, data = alice.get("/api/schedules")
    assert status == 200 and data["schedules"] == [created]

    status, data = alice.put(f"/api/schedules/{created['id']}", {"enabled": False})
    assert status == 200 and data["status"] == "ok"
    assert data["schedule"]["enabled"] is False
    assert {k: v for k, v in data["schedule"].items() if k != "enabled"} == {
        k: v for k, v in created.items() if k != "enabled"
    }

    status, data = alice.put(
        f"/api/schedules/{created['id']}",
        {"name": "Renamed", "models": ["gemini-2.5-flash"], "max_tokens": 100, "temperature": 0},
    )
    assert status == 200
    assert data["schedule"]["name"] == "Renamed"
    assert data["schedule"]["models_json"] == ["gemini-2.5-flash"]
    assert data["schedule"]["temperature"] == 0.0

    assert alice.delete(f"/api/schedules/{created['id']}") == (200, {"status": "ok"})
    assert alice.get("/api/schedules") == (200, {"schedules": [], "next_cursor": None})
    assert alice.delete(f"/api/schedules/{created['id']}")[0] == 404


def test_disabling_removes_the_schedule_from_the_due_index(alice):
    schedule_id = create(alice)["id"]
    assert ScheduleModel.get(alice.id, schedule_id).due_shard is not None
    alice.put(f"/api/schedules/{schedule_id}", {"enabled": False})
    assert ScheduleModel.get(alice.id, schedule_id).due_shard is None
    alice.put(f"/api/schedules/{schedule_id}", {"enabled": True})
    assert ScheduleModel.get(alice.id, schedule_id).due_shard is not None


def test_a_schedule_created_disabled_is_not_in_the_due_index(alice):
    schedule_id = create(alice, enabled=False)["id"]
    assert ScheduleModel.get(alice.id, schedule_id).due_shard is None


def test_changing_the_interval_retimes_next_run_from_now(clock, alice):
    schedule_id = create(alice)["id"]
    clock.advance(hours=1)
    _, data = alice.put(f"/api/schedules/{schedule_id}", {"interval_hours": 2})
    assert data["schedule"]["next_run"] == "2026-11-30T12:00:00.000000Z"


def test_models_may_name_a_provider_explicitly(alice):
    schedule = create(alice, models=["openai/gpt-4o", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-pro"])
    assert schedule["models"][0] == "openai/gpt-4o"


# --- validation ----------------------------------------------------------------------------

INVALID = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 257}, "name"),
    ({"name": 5}, "name"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * 50_001}, "prompt"),
    ({"prompt": "😀" * 25_001}, "prompt"),  # 25,001 characters, 100,004 bytes
    ({"models": []}, "models"),
    ({"models": [f"gpt-{i}" for i in range(21)]}, "models"),
    ({"models": "gpt-4o"}, "models"),
    ({"models": [5]}, "models.0"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 128_001}, "max_tokens"),
    ({"max_tokens": "512"}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": 2.01}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"interval_hours": 0}, "interval_hours"),
    ({"interval_hours": 721}, "interval_hours"),
    ({"interval_hours": None}, "interval_hours"),
    ({"enabled": "yes"}, "enabled"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("override,field", INVALID)
def test_create_validation_names_the_field(alice, override, field):
    status, data = alice.post("/api/schedules", {**SEED_CREATE, **override})
    assert status == 422, data
    assert data["detail"][0]["field"] == field
    assert field.split(".")[0] in data["error"]


def test_a_prompt_is_bounded_in_bytes_too_and_the_answer_says_the_limit(alice):
    status, data = alice.post("/api/schedules", {**SEED_CREATE, "prompt": "😀" * 25_001})
    assert status == 422
    assert data["detail"] == [{"field": "prompt", "message": "must be at most 100000 bytes in UTF-8",
                               "limit": {"max_bytes": 100_000}}]
    status, data = alice.post("/api/schedules", {**SEED_CREATE, "prompt": "😀" * 25_000})
    assert status == 200, data


@pytest.mark.parametrize("override,field", INVALID)
def test_update_validation_names_the_field(alice, override, field):
    schedule_id = create(alice)["id"]
    status, data = alice.put(f"/api/schedules/{schedule_id}", override)
    assert status == 422, data
    assert data["detail"][0]["field"] == field


@pytest.mark.parametrize("field", ["name", "models", "prompt", "interval_hours"])
def test_create_requires_each_field(alice, field):
    body = {k: v for k, v in SEED_CREATE.items() if k != field}
    status, data = alice.post("/api/schedules", body)
    assert status == 422
    assert data["detail"][0]["field"] == field


def test_limits_are_named_in_the_error(alice):
    _, data = alice.post("/api/schedules", {**SEED_CREATE, "max_tokens": 200_000})
    assert data["detail"][0]["limit"] == {"le": 128000}


@pytest.mark.parametrize("model", ["llama3", "mistral-large", "nosuch/model", "demo/fast", "gpt 4"])
def test_unknown_models_are_422_naming_the_model(alice, model):
    status, data = alice.post("/api/schedules", {**SEED_CREATE, "models": ["gpt-4o", model]})
    assert status == 422
    assert data["detail"][0]["model"] == model
    assert repr(model) in data["error"]


def test_duplicate_models_are_refused(alice):
    status, data = alice.post("/api/schedules", {**SEED_CREATE, "models": ["gpt-4o", "gpt-4o"]})
    assert status == 422 and data["detail"][0]["model"] == "gpt-4o"


def test_empty_update_is_refused(alice):
    schedule_id = create(alice)["id"]
    assert alice.put(f"/api/schedules/{schedule_id}", {})[0] == 422


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"", 400),
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"null", 400),
        (b"\xff\xfe", 400),
        (b"{" + b'"name": "' + b"x" * (1024 * 1024) + b'"}', 413),
    ],
)
def test_malformed_bodies_get_the_error_envelope(alice, raw, status):
    code, data = alice.post("/api/schedules", raw=raw)
    assert code == status
    assert isinstance(data, dict) and "error" in data


def test_body_without_content_type_is_still_parsed_as_json(alice):
    code, data = alice.post(
        "/api/schedules", raw=json.dumps(SEED_CREATE).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert code == 200, data


def test_unsupported_method_uses_the_error_envelope(alice):
    code, data = alice.call("PATCH", "/api/schedules", {})
    assert code == 405 and "error" in data


# --- isolation -----------------------------------------------------------------------------


def test_another_users_schedule_is_indistinguishable_from_a_missing_one(alice, bob):
    schedule_id = create(alice)["id"]
    for api, sid in ((bob, schedule_id), (alice, "0" * 32)):
        status, data = api.put(f"/api/schedules/{sid}", {"enabled": False})
        assert (status, data) == (404, {"error": "Schedule not found", "detail": {"schedule_id": sid}})
        status, data = api.delete(f"/api/schedules/{sid}")
        assert (status, data) == (404, {"error": "Schedule not found", "detail": {"schedule_id": sid}})
    assert bob.get("/api/schedules") == (200, {"schedules": [], "next_cursor": None})
    # nothing of alice's changed
    assert ScheduleModel.get(alice.id, schedule_id).enabled is True
    assert ScheduleModel.count(bob.id) == 0


# --- no client input causes a 500 ---------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "models": st.lists(st.sampled_from(["gpt-4o", "claude-3-5-haiku-latest", "x/y", ""]) | json_values, max_size=3)
        | json_values,
        "prompt": json_values,
        "max_tokens": st.integers(-5, 200_000) | json_values,
        "temperature": st.floats(-1, 3) | json_values,
        "interval_hours": st.integers(-1, 800) | json_values,
        "enabled": json_values,
    },
) | json_values


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_arbitrary_create_and_update_bodies_never_cause_a_500(alice, body):
    status, data = alice.post("/api/schedules", body)
    assert status in (200, 400, 422), (status, data)
    status, data = alice.put("/api/schedules/some-id", body)
    assert status in (400, 404, 422), (status, data)
