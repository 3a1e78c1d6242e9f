"""The exfiltration path of a stored key, end to end: whoever holds a user's token points
the user's provider at their own server and triggers a run. The key must not go there.

Two loopback provider servers stand for the user's endpoint and the attacker's; the runner
runs for real (the `lambda_invokes` fixture delivers its invokes).
"""
from __future__ import annotations

import pytest

from devstack.fake_providers import FakeProviderServer
from chalicelib.tables import ProviderModel, RunModel

SECRET = "sk-local-Zq8rT4vW1xY7uI3oP9aS6dF2gH5jK0lC"
SCHEDULE = {"name": "nightly", "models": ["myvllm/t"], "prompt": "Say hello.", "max_tokens": 16, "interval_hours": 1}


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # both servers are on loopback
    with FakeProviderServer() as users, FakeProviderServer() as attackers:
        yield users, attackers


def keys_seen(server) -> list[str]:
    return [request.headers.get("authorization", "") for request in server.requests]


def run_schedule(api, lambda_invokes) -> dict:
    status, data = api.post("/api/schedules", SCHEDULE)
    assert status == 200, data
    assert api.post(f"/api/schedules/{data['id']}/trigger")[0] == 200
    lambda_invokes.run_pending()
    [run] = RunModel.query(api.id)
    return run.results[0]


def test_a_key_stored_for_one_endpoint_reaches_it(alice, kms, lambda_invokes, servers):
    users, _ = servers
    alice.put("/api/providers/myvllm", {"kind": "openai", "base_url": users.base_url_for("openai"), "models": [{"id": "t"}]})
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})

    result = run_schedule(alice, lambda_invokes)

    assert result["success"], result
    assert keys_seen(users) == [f"Bearer {SECRET}"]


def test_pointing_the_provider_elsewhere_does_not_send_the_key_there(alice, kms, lambda_invokes, servers):
    users, attackers = servers
    provider = {"kind": "openai", "base_url": users.base_url_for("openai"), "models": [{"id": "t"}]}
    alice.put("/api/providers/myvllm", provider)
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})

    status, data = alice.put("/api/providers/myvllm", {**provider, "base_url": attackers.base_url_for("openai")})
    assert (status, data["key_removed"]) == (200, True)
    run_schedule(alice, lambda_invokes)

    assert not any(SECRET in seen for seen in keys_seen(attackers))
    assert users.requests == []


def test_a_provider_moved_behind_the_apis_back_fails_without_sending_the_key(alice, kms, lambda_invokes, servers):
    users, attackers = servers
    alice.put("/api/providers/myvllm", {"kind": "openai", "base_url": users.base_url_for("openai"), "models": [{"id": "t"}]})
    alice.put("/api/keys", {"provider_key": "myvllm", "value": SECRET})
    ProviderModel(alice.id, "myvllm").update(actions=[ProviderModel.base_url.set(attackers.base_url_for("openai"))])

    result = run_schedule(alice, lambda_invokes)

    assert result["error_type"] == "auth_failed" and "could not be decrypted" in result["error"]
    assert attackers.requests == [] and users.requests == []
