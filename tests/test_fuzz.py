"""No client input causes a 500 or an unhandled exception: every route (read from
`app.app.routes`, so routes added later are fuzzed too), every path and query parameter,
every body, and the WebSocket handlers.

Bodies include JSON of every type at every place, nesting far past the parser's bound
(`[` × 1000), strings past the body limit, and bytes that are not UTF-8. Examples are
few per route (`FUZZ_EXAMPLES`, default 8) so the file stays fast; raise it to hunt.

Deep nesting is also sent outside hypothesis: hypothesis raises the recursion limit while
it runs a test, which hides a `RecursionError` the parser would raise in Lambda.
"""
from __future__ import annotations

import inspect
import json
import os
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import app as app_module
from chalicelib import websocket
from tests.test_websocket import DOMAIN, connected
from devstack.ws_gateway import new_connection_id, ws_event

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
_PARAM = re.compile(r"\{(\w+)\}")

ROUTES = sorted(
    (path, method) for path, by_method in app_module.app.routes.items() for method in by_method
)

# --- what a client can send -------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.sampled_from(["", " ", "\x00", "\ud800"[:0] + "é", "a" * 300])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
# Objects with the fields the routes know, holding anything.
FIELDS = ["email", "password", "name", "models", "prompt", "max_tokens", "temperature", "interval_hours",
          "enabled", "provider_key", "value", "kind", "base_url", "max_concurrent", "id"]
objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=6)
DEEP = [b"[" * 1000, b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000,
        b'{"models": ' + b"[" * 1000 + b"]" * 1000 + b"}"]
raw_bodies = (
    objects.map(lambda o: json.dumps(o).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.sampled_from(DEEP + [b"", b"\xff\xfe\xfd", b'{"name": "' + b"x" * (1024 * 1024 + 1) + b'"}', b"null", b"{"])
    | st.binary(max_size=64)
)
ids = st.text(max_size=60) | st.sampled_from(["0" * 32, "a" * 3000, "..", "%2F", "myvllm", "openai", "app.js"])
query_values = st.text(max_size=30) | st.sampled_from(["0", "-1", "101", "999999999999", "running,queued", "schedule"])
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "status", "source", "page"]) | st.text(min_size=1, max_size=8),
    query_values,
    max_size=3,
)


def _url(path: str, values: dict[str, str], query: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe="") or "x")
    return path + ("?" + urlencode(query) if query else "")


def _never_a_500(status: int, data, url: str) -> None:
    assert status < 500, (url, status, data)
    if status >= 400 and not url.startswith("/ui/"):
        assert isinstance(data, dict) and isinstance(data.get("error"), str), (url, status, data)


@pytest.mark.parametrize("path,method", ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_no_request_to_any_route_is_a_500(alice, path, method):
    names = _PARAM.findall(path)

    @FUZZ
    @given(values=st.fixed_dictionaries({name: ids for name in names}), query=queries, body=raw_bodies)
    @example(values={name: "a" * 3000 for name in names}, query={"limit": "-1", "cursor": "x"}, body=DEEP[0])
    def attempt(values, query, body):
        url = _url(path, values, query)
        status, data = alice.call(method, url, raw=body)
        _never_a_500(status, data, url)

    attempt()


def _reads_a_body(path: str, method: str) -> bool:
    view = app_module.app.routes[path][method].view_function
    return "body()" in inspect.getsource(view)  # getsource unwraps the `route` decorator


BODY_ROUTES = [(p, m) for p, m in ROUTES if _reads_a_body(p, m)]


def test_the_routes_that_read_a_body_are_found():
    assert ("/api/auth/login", "POST") in BODY_ROUTES and ("/api/schedules", "GET") not in BODY_ROUTES


@pytest.mark.parametrize("path,method", BODY_ROUTES, ids=[f"{m} {p}" for p, m in BODY_ROUTES])
def test_deeply_nested_bodies_are_a_4xx_on_every_body_route(anonymous, alice, path, method):
    url = _url(path, {name: "0" * 32 for name in _PARAM.findall(path)}, {})
    for body in DEEP:
        for api in (alice, anonymous):
            status, data = api.call(method, url, raw=body)
            assert 400 <= status < 500, (url, body[:20], status, data)
            assert "error" in data


# --- the WebSocket ----------------------------------------------------------------------------

messages = (
    objects.map(json.dumps)
    | st.fixed_dictionaries({"type": st.sampled_from(["ping", "sync", "cancel"])}, optional={"job_id": json_values}).map(json.dumps)
    | json_values.map(json.dumps)
    | st.sampled_from(["[" * 1000, '{"type":' * 1000, "x" * 40_000, "", "null", "{"])
    | st.text(max_size=80)
)


def test_no_websocket_message_raises_and_each_gets_a_typed_reply(clock, alice):
    @FUZZ
    @given(body=messages | st.none())
    @example(body="[" * 1000)
    @example(body='{"type": "cancel", "job_id": ' + "[" * 1000 + "]" * 1000 + "}")
    def attempt(body):
        reply = websocket.handle(alice.id, body)
        assert isinstance(reply, dict) and isinstance(reply.get("type"), str)
        assert len(websocket.encode(reply)) < 128 * 1024

    attempt()


@pytest.mark.parametrize("body", [b.decode() for b in DEEP], ids=["open", "balanced", "objects", "in-a-field"])
def test_a_deeply_nested_websocket_message_gets_an_error_reply(clock, alice, body):
    assert websocket.handle(alice.id, body)["type"] == "error"


def test_the_websocket_handlers_never_raise(clock, alice):
    connection_id = connected(alice.token)

    @FUZZ
    @given(body=messages, binary=st.booleans(), query=queries | st.dictionaries(st.sampled_from(["token", "ticket"]), query_values))
    @example(body="[" * 1000, binary=False, query={"ticket": "a" * 5000, "token": "x"})
    def attempt(body, binary, query):
        event = ws_event("$default", connection_id, domain_name=DOMAIN, body=body)
        event["isBase64Encoded"] = binary
        assert app_module.ws_message(event, None) == {"statusCode": 200}
        connect = ws_event("$connect", new_connection_id(), domain_name=DOMAIN, query=urlencode(query))
        answer = app_module.ws_connect(connect, None)
        status = answer["statusCode"] if isinstance(answer, dict) else answer.status_code
        assert status in (401, 429), answer

    attempt()
