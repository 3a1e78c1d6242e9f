"""Path ids that cannot exist are a 404 before any DynamoDB call (real DynamoDB would refuse
an over-long key with a ValidationException, i.e. a 500; moto does not enforce the limit).

The routes are read from `app.app.routes`, so a route added later is covered by these tests
without editing them.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

import app as app_module
from chalicelib import path_ids
from tests.recording import counting_dynamodb_calls

_PARAM = re.compile(r"\{(\w+)\}")

# Ids the client picks for what it creates: a bad one is a bad field (422), not a 404.
CHOSEN_BY_THE_CLIENT = {("PUT", "/api/providers/{provider_key}", "provider_key")}

ODD_IDS = {
    "too_long": "a" * 3000,
    "too_long_hex": "0" * 1025,
    "upper_case": "A" * 32,
    "space": "x y",
    "dot_dot": "..",
    "nul": "a\x00b",
    "unicode": "caf\u00e9",
    "emoji": "\U0001f600",
    "percent": "%2e%2e",
}


def routes_with_parameters() -> list[tuple[str, str, list[str]]]:
    found = []
    for path, by_method in sorted(app_module.app.routes.items()):
        names = _PARAM.findall(path)
        if names:
            found.extend((path, method, names) for method in sorted(by_method))
    return found


def test_every_path_parameter_of_every_route_has_a_shape():
    missing = {
        (path, name) for path, _method, names in routes_with_parameters() for name in names
        if name not in path_ids.SHAPES
    }
    assert missing == set(), "add the id's shape to chalicelib/path_ids.SHAPES"


def _url(path: str, names: list[str], odd_name: str, odd_value: str) -> str:
    good = {"schedule_id": "0" * 32, "job_id": "0" * 32, "target_user_id": "0" * 32,
            "run_id": "20261130T090000.000000Z-" + "0" * 32, "provider_key": "myvllm", "name": "app.js"}
    for name in names:
        value = odd_value if name == odd_name else good.get(name, "x")
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


@pytest.mark.parametrize("case", sorted(ODD_IDS))
@pytest.mark.parametrize(
    "path,method,names", routes_with_parameters(), ids=[f"{m} {p}" for p, m, _ in routes_with_parameters()]
)
def test_an_id_without_its_shape_is_404_without_touching_dynamodb(alice, path, method, names, case):
    for name in names:
        if path_ids.SHAPES[name].matches(ODD_IDS[case]):
            continue  # odd for another kind of id, not this one
        url = _url(path, names, name, ODD_IDS[case])
        with counting_dynamodb_calls() as calls:
            status, data = alice.call(method, url, {"enabled": False})
        if (method, path, name) in CHOSEN_BY_THE_CLIENT:
            assert status == 422, (url, data)
            assert data["detail"][0]["field"] == name
        else:
            assert status == 404, (url, data)
            assert data["error"] == path_ids.SHAPES[name].missing
        assert calls.total == 0, calls.by_name


def test_the_404_repeats_a_short_id_exactly_and_a_long_one_cut(alice):
    assert alice.get("/api/jobs/nope") == (404, {"error": "Job not found", "detail": {"job_id": "nope"}})
    status, data = alice.get("/api/jobs/" + "f" * 5000)
    assert status == 404
    assert data["detail"]["job_id"] == "f" * path_ids.MAX_ECHO_CHARS + "..."


def test_a_bad_token_is_still_401_whatever_the_id(anonymous):
    assert anonymous.get("/api/jobs/" + "a" * 3000)[0] == 401


@pytest.mark.parametrize("name,value", [
    ("schedule_id", "0123456789abcdef0123456789abcdef"),
    ("job_id", "f" * 32),
    ("run_id", "20261130T090000.000000Z-" + "a" * 32),
    ("provider_key", "my-vllm_2"),
    ("provider_key", "a" * 64),
    ("target_user_id", "0" * 32),
    ("name", "app.js"),
])
def test_ids_this_app_creates_have_their_shape(name, value):
    assert path_ids.SHAPES[name].matches(value)
