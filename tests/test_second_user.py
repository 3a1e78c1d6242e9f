"""A second user can neither read nor change the first user's data, through any route.

The routes come from `app.app.routes`, so a route added later with an id in its path fails
`test_every_route_with_an_id_is_tried_by_a_second_user` until it is added here. Alice owns one
of everything (a schedule, its job, a run, an alert rule, a stored key, a provider); Bob then
calls every route with Alice's ids in the path and in the query. Ids of things a user owns
answer 404, exactly as a missing id does; provider keys are names in each user's own
namespace (Bob may have a provider called `myvllm` too), so there the proof is that nothing of
Alice's changed. Afterwards everything Alice can see is what she saw before.
"""
from __future__ import annotations

import socket

import pytest

from app import app
from tests.runs import run_at

PUBLIC_IP = "93.184.216.34"
PROVIDER = {"kind": "openai", "base_url": "https://vllm.example.com/v1", "models": [{"id": "llama-3"}]}

# Each path parameter and the owner-scoped ids it takes; the admin route's user id is Alice's.
OWNED = ("schedule_id", "job_id", "run_id", "alert_id")
NAMESPACED = ("provider_key",)
ADMIN_ONLY = ("target_user_id",)

BODIES = {
    ("PUT", "/api/schedules/{schedule_id}"): {"name": "taken over", "enabled": False},
    ("PUT", "/api/providers/{provider_key}"): {**PROVIDER, "base_url": "https://vllm.example.com/bob"},
    ("PUT", "/api/alerts/{alert_id}"): {"name": "taken over", "enabled": False},
    ("PUT", "/api/admin/users/{target_user_id}/limits"): {"max_concurrent": 1},
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """vllm.example.com is a public address; no other name resolves (no network)."""
    def getaddrinfo(host, port, *args, **kwargs):
        if host != "vllm.example.com":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def owned(kms, alice, lambda_invokes) -> dict[str, str]:
    """One of everything, owned by Alice (the first user, so also the admin)."""
    status, created = alice.post("/api/schedules", {"name": "Alice's", "models": ["openai/gpt-4o"], "prompt": "hi", "interval_hours": 1})
    assert status == 200, created
    schedule_id = created["id"]
    status, triggered = alice.post(f"/api/schedules/{schedule_id}/trigger")
    assert status == 200, triggered
    assert alice.put("/api/keys", {"provider_key": "openai", "value": "sk-alice-secret-0123456789"})[0] == 200
    assert alice.put("/api/providers/myvllm", PROVIDER)[0] == 200
    status, alert = alice.post("/api/alerts", {"name": "slow", "schedule_id": schedule_id, "model": "*",
                                               "condition": {"kind": "failure"}})
    assert status == 200, alert
    return {
        "schedule_id": schedule_id,
        "job_id": triggered["job_id"],
        "run_id": run_at(alice.id, "2026-11-30T08:00:00Z", schedule_id=schedule_id, schedule_name="Alice's"),
        "alert_id": alert["id"],
        "provider_key": "myvllm",
        "target_user_id": alice.id,
    }


def everything_seen_by(user) -> dict:
    """All a user can read of their own data, answers as given."""
    seen = {}
    for path in ("/api/schedules", "/api/keys", "/api/providers", "/api/alerts", "/api/alerts/events",
                 "/api/history", "/api/jobs"):
        status, data = user.get(path)
        assert status == 200, (path, data)
        seen[path] = data
    return seen


def routes_with_ids():
    for path, entries in app.routes.items():
        if "{" not in path or path.startswith("/ui/"):
            continue
        for method in entries:
            yield method, path


def test_every_route_with_an_id_is_tried_by_a_second_user():
    names = {part.strip("{}") for _, path in routes_with_ids() for part in path.split("/") if part.startswith("{")}
    assert names == set(OWNED + NAMESPACED + ADMIN_ONLY), "a new path parameter: say here whose it is"


def test_a_second_user_gets_404_for_every_owned_id_and_changes_nothing(alice, bob, owned):
    before = everything_seen_by(alice)
    tried = 0
    for method, template in routes_with_ids():
        path = template
        for name, value in owned.items():
            path = path.replace("{" + name + "}", value)
        status, data = bob.call(method, path, BODIES.get((method, template)))
        tried += 1
        if any("{" + name + "}" in template for name in OWNED):
            assert status == 404, (method, path, status, data)
        elif "{target_user_id}" in template:
            assert status == 403, (method, path, status, data)
        else:  # Bob's own namespace: his provider `myvllm`, his (missing) key
            assert status in (200, 404), (method, path, status, data)
        assert "sk-alice-secret" not in repr(data)
    assert tried >= 12
    assert everything_seen_by(alice) == before


@pytest.mark.parametrize("path", [
    "/api/history?schedule_id={schedule_id}",
    "/api/history/export?schedule_id={schedule_id}",
    "/api/stats?schedule_id={schedule_id}",
    "/api/alerts/events?alert_id={alert_id}",
])
def test_a_second_user_naming_an_owned_id_in_a_query_gets_404(alice, bob, owned, path):
    status, data = bob.get(path.format(**owned))
    assert status == 404, data


def test_a_second_user_cannot_aim_a_rule_at_an_owned_schedule(alice, bob, owned):
    status, data = bob.post("/api/alerts", {"name": "spy", "schedule_id": owned["schedule_id"], "model": "*",
                                            "condition": {"kind": "failure"}})
    assert status == 404, data


def test_a_second_users_lists_hold_nothing_of_the_first(alice, bob, owned):
    seen = everything_seen_by(bob)
    assert "sk-alice" not in repr(seen)
    assert seen["/api/schedules"]["schedules"] == []
    assert seen["/api/history"]["runs"] == []
    assert seen["/api/jobs"]["jobs"] == []
    assert seen["/api/alerts"]["alerts"] == []
    assert seen["/api/alerts/events"]["events"] == []
    assert not [k for k in seen["/api/keys"]["keys"] if k["has_user_key"]]
    assert [p for p in seen["/api/providers"]["providers"] if not p["builtin"]] == []
