"""The providers API (DESIGN §3): user endpoints next to the built-ins, validation, and the
endpoint (SSRF) rule.

No test touches the network: `socket.getaddrinfo` is replaced by a table of fake names, so
"a name that resolves to 10.0.0.1" is simulated, and any other name does not resolve.
"""
from __future__ import annotations

import socket

import pytest

from chalicelib import keys, user_providers
from chalicelib.tables import ProviderModel

PUBLIC_IP = "93.184.216.34"
FAKE_DNS = {
    "vllm.example.com": [PUBLIC_IP],
    "api.example.com": [PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946"],
    "internal.example.com": ["10.0.0.1"],
    "mixed.example.com": [PUBLIC_IP, "127.0.0.1"],  # one bad address is enough to refuse
    "rebind.example.com": ["::ffff:169.254.169.254"],
}

MYVLLM = {
    "kind": "openai",
    "base_url": "https://vllm.example.com/v1",
    "models": [
        {"id": "llama-3", "input_cost_per_mtok": 0.1, "output_cost_per_mtok": 0.2},
        {"id": "meta-llama/Llama-3.1-8B-Instruct"},
    ],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """Names resolve from FAKE_DNS only; `calls` records every lookup."""
    calls: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        calls.append(host)
        if host not in FAKE_DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = []
        for address in FAKE_DNS[host]:
            if ":" in address:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def put(api, key="myvllm", **overrides):
    return api.put(f"/api/providers/{key}", {**MYVLLM, **overrides})


def own(api) -> dict:
    status, data = api.get("/api/providers")
    assert status == 200
    return {p["provider_key"]: p for p in data["providers"] if not p["builtin"]}


def error_field(data) -> str:
    detail = data["detail"]
    return detail[0]["field"] if isinstance(detail, list) else detail["field"]


# --- create, list, delete -------------------------------------------------------------------


def test_put_answers_ok_and_the_provider(alice):
    status, data = put(alice)
    assert status == 200
    assert data == {
        "status": "ok",
        "key_removed": False,
        "provider": {
            "provider_key": "myvllm",
            "kind": "openai",
            "base_url": "https://vllm.example.com/v1",
            "builtin": False,
            "requires_key": False,
            "models": [
                {"id": "llama-3", "input_cost_per_mtok": 0.1, "output_cost_per_mtok": 0.2},
                {
                    "id": "meta-llama/Llama-3.1-8B-Instruct",
                    "input_cost_per_mtok": None,
                    "output_cost_per_mtok": None,
                },
            ],
        },
    }


def test_list_shows_builtins_then_own(alice):
    put(alice)
    status, data = alice.get("/api/providers")
    assert status == 200
    keys_in_order = [p["provider_key"] for p in data["providers"]]
    assert keys_in_order == ["openai", "anthropic", "gemini", "myvllm"]
    builtins = [p for p in data["providers"] if p["builtin"]]
    assert all(p["models"] and p["base_url"].startswith("https://") for p in builtins)
    assert {m["id"] for m in builtins[0]["models"]} >= {"gpt-4o-mini", "gpt-4.1"}
    assert set(data["providers"][0]) == {"provider_key", "kind", "base_url", "builtin", "requires_key", "models"}
    assert [p["requires_key"] for p in data["providers"]] == [True, True, True, False]


def test_demo_is_listed_where_the_stack_provides_it(alice, monkeypatch):
    monkeypatch.setenv("DEMO_PROVIDER_URL", "http://127.0.0.1:8503/v1")
    status, data = alice.get("/api/providers")
    demo = next(p for p in data["providers"] if p["provider_key"] == "demo")
    assert demo["builtin"] is True and demo["kind"] == "openai"


def test_put_replaces_and_delete_removes(alice):
    put(alice)
    status, data = put(alice, kind="anthropic", models=[{"id": "claude-local"}])
    assert status == 200 and data["provider"]["kind"] == "anthropic"
    assert [m["id"] for m in own(alice)["myvllm"]["models"]] == ["claude-local"]

    assert alice.delete("/api/providers/myvllm") == (200, {"status": "ok"})
    assert own(alice) == {}
    status, data = alice.delete("/api/providers/myvllm")
    assert status == 404 and data["detail"] == {"provider_key": "myvllm"}


def test_deleting_a_builtin_is_404(alice):
    assert alice.delete("/api/providers/openai")[0] == 404


def test_providers_are_per_user(alice, bob):
    put(alice)
    assert own(bob) == {}
    assert bob.delete("/api/providers/myvllm")[0] == 404
    assert "myvllm" in own(alice)
    # bob may use the same name for his own, independent provider
    assert put(bob, base_url="http://8.8.8.8:8000/v1")[0] == 200
    assert own(alice)["myvllm"]["base_url"] == MYVLLM["base_url"]


def test_anonymous_is_refused(anonymous):
    assert anonymous.get("/api/providers")[0] == 401
    assert anonymous.put("/api/providers/myvllm", MYVLLM)[0] == 401
    assert anonymous.delete("/api/providers/myvllm")[0] == 401


def test_deleting_a_provider_deletes_its_stored_key(kms, alice):
    put(alice)
    assert alice.put("/api/keys", {"provider_key": "myvllm", "value": "sk-local-123456"})[0] == 200
    alice.delete("/api/providers/myvllm")
    assert keys.get_api_key(alice.id, "myvllm") is None
    put(alice)  # re-created: it does not inherit the old key
    status, data = alice.get("/api/keys")
    assert {"provider_key": "myvllm", "has_user_key": False, "last4": None} in data["keys"]


# --- provider keys --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["openai", "anthropic", "gemini", "demo"])
def test_builtin_keys_cannot_be_overwritten(alice, key):
    status, data = put(alice, key=key)
    assert status == 409
    assert data["detail"]["field"] == "provider_key" and key in data["error"]
    assert own(alice) == {}


@pytest.mark.parametrize(
    "key", ["MyVllm", "-vllm", "_vllm", "my.vllm", "my%20vllm", "a" * 65, "caf%C3%A9"]
)
def test_bad_provider_keys_are_422(alice, key):
    status, data = put(alice, key=key)
    assert status == 422, data
    assert data["detail"][0]["field"] == "provider_key"


@pytest.mark.parametrize("key", ["a", "0", "my-vllm_2", "a" * 64])
def test_good_provider_keys(alice, key):
    assert put(alice, key=key)[0] == 200


# --- body validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"kind": "mistral"}, "kind"),
        ({"kind": None}, "kind"),
        ({"base_url": 123}, "base_url"),
        ({"base_url": ""}, "base_url"),
        ({"base_url": "https://vllm.example.com/" + "a" * 2048}, "base_url"),
        ({"models": []}, "models"),
        ({"models": [{"id": f"m{i}"} for i in range(201)]}, "models"),
        ({"models": ["llama-3"]}, "models.0"),
        ({"models": [{"id": ""}]}, "models.0.id"),
        ({"models": [{"id": "bad id"}]}, "models.0.id"),
        ({"models": [{"id": "llama-3\n"}]}, "models.0.id"),
        ({"models": [{"id": "/llama"}]}, "models.0.id"),
        ({"models": [{"id": "x" * 201}]}, "models.0.id"),
        ({"models": [{"id": "a"}, {"id": "a"}]}, "models"),
        ({"models": [{"id": "a", "input_cost_per_mtok": -0.01}]}, "models.0.input_cost_per_mtok"),
        ({"models": [{"id": "a", "output_cost_per_mtok": 10_000.5}]}, "models.0.output_cost_per_mtok"),
        ({"models": [{"id": "a", "input_cost_per_mtok": "1"}]}, "models.0.input_cost_per_mtok"),
        ({"models": [{"id": "a", "input_cost_per_mtok": True}]}, "models.0.input_cost_per_mtok"),
        ({"models": [{"id": "a", "price": 1}]}, "models.0.price"),
        ({"api_key": "sk-x"}, "api_key"),
    ],
)
def test_validation_names_the_field(alice, overrides, field):
    status, data = put(alice, **overrides)
    assert status == 422, data
    assert error_field(data) == field
    assert own(alice) == {}


@pytest.mark.parametrize("missing", ["kind", "base_url", "models"])
def test_required_fields(alice, missing):
    body = {k: v for k, v in MYVLLM.items() if k != missing}
    status, data = alice.put("/api/providers/myvllm", body)
    assert status == 422 and error_field(data) == missing


def test_prices_at_the_limits_are_accepted(alice):
    models = [
        {"id": "free", "input_cost_per_mtok": 0, "output_cost_per_mtok": 0},
        {"id": "dear", "input_cost_per_mtok": 10_000, "output_cost_per_mtok": 10_000},
        {"id": "unknown", "input_cost_per_mtok": None, "output_cost_per_mtok": None},
    ]
    status, data = put(alice, models=models)
    assert status == 200
    assert data["provider"]["models"][1]["output_cost_per_mtok"] == 10_000
    assert [m["id"] for m in put(alice, models=[{"id": f"m{i}"} for i in range(200)])[1]["provider"]["models"]][-1] == "m199"


def test_bad_json_gets_the_error_envelope(alice):
    status, data = alice.put("/api/providers/myvllm", raw=b"{not json")
    assert status == 400 and "error" in data


# --- the endpoint (SSRF) rule ---------------------------------------------------------------

REFUSED = [
    "http://127.0.0.1:8000/v1",
    "http://127.255.255.254/",
    "http://localhost:11434/v1",
    "http://LOCALHOST/v1",
    "http://localhost./v1",
    "http://ollama.localhost/v1",
    "http://[::1]:8000/v1",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://10.0.0.1/v1",
    "http://10.255.255.255/",
    "http://172.16.0.5/v1",
    "http://172.31.255.255/",
    "http://192.168.1.10:1234/v1",
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fc00::1]/",
    "http://0.0.0.0:8000/",
    "http://0/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0X7F.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://10.1/",
    "http://167772161/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://100.64.0.1/",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://metadata/",
    "http://internal.example.com/v1",
    "http://mixed.example.com/v1",
    "http://rebind.example.com/v1",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_endpoints_are_refused(url):
    with pytest.raises(user_providers.EndpointRefused):
        user_providers.check_endpoint(url)


def test_a_refused_endpoint_is_a_422_naming_base_url_and_nothing_is_stored(alice):
    status, data = put(alice, base_url="http://169.254.169.254/latest/meta-data")
    assert status == 422, data
    assert data["detail"] == [{"field": "base_url", "message": "host '169.254.169.254' is a link-local address (cloud metadata lives there)"}]
    assert data["error"] == f"Invalid field 'base_url': {data['detail'][0]['message']}"
    assert own(alice) == {}


MALFORMED = [
    ("ftp://api.example.com/v1", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://api.example.com/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("api.example.com/v1", "scheme"),
    ("//api.example.com/v1", "scheme"),
    ("http://user:pass@api.example.com/v1", "credentials"),
    ("http://user@api.example.com/v1", "credentials"),
    ("http://api.example.com@127.0.0.1/", "credentials"),
    ("http://api.example.com\\@127.0.0.1/", "backslash"),
    ("https://api.example.com/v1#frag", "fragment"),
    ("https://api.example.com/v1#", "fragment"),
    ("https://api.example.com/v1?key=1", "query"),
    ("http:///v1", "host"),
    ("http://:8000/v1", "host"),
    ("http://api.example.com:99999/", "port"),
    ("http://api.example.com:0/", "port"),
    ("http://api.example.com:x/", "port"),
    ("http://127.0.0.%31/", "percent"),
    ("http://\uff11\uff12\uff17.0.0.1/", "ASCII"),
    (" http://api.example.com/", "spaces"),
    ("http://api.example.com/v1\n", "spaces"),
    ("http://[::1/", "IPv6"),
    ("http://256.0.0.1/", "IPv4"),
    ("http://1.2.3.4.5/", "IPv4"),
    ("http://08.0.0.1/", "IPv4"),
    ("http://nxdomain.example.com/v1", "cannot resolve"),
]


@pytest.mark.parametrize("url, why", MALFORMED)
def test_malformed_urls_are_refused_saying_why(url, why):
    with pytest.raises(user_providers.EndpointRefused) as refused:
        user_providers.check_endpoint(url)
    assert why in refused.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://vllm.example.com/v1",
        "https://API.EXAMPLE.COM/v1/",
        "http://api.example.com:8000",
        "http://8.8.8.8:8000/v1",
        "http://[2606:4700:4700::1111]/v1",
        "https://vllm.example.com./v1",
    ],
)
def test_public_endpoints_are_accepted(url):
    assert user_providers.check_endpoint(url)


def test_a_public_endpoint_is_stored_as_given(alice):
    status, data = put(alice, base_url="https://API.EXAMPLE.COM/v1/")
    assert status == 200, data
    assert data["provider"]["base_url"] == "https://API.EXAMPLE.COM/v1/"


def test_literal_addresses_need_no_dns(fake_dns):
    for url in ("http://2130706433/", "http://[::1]/", "http://8.8.8.8/"):
        try:
            user_providers.check_endpoint(url)
        except user_providers.EndpointRefused:
            pass
    assert fake_dns == []


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_private_endpoints_are_refused_whatever_the_stage(monkeypatch, stage):
    monkeypatch.setenv("STAGE", stage)
    with pytest.raises(user_providers.EndpointRefused):
        user_providers.check_endpoint("http://127.0.0.1:8000/v1")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://internal.example.com/v1", "http://[::1]/"])
def test_allow_private_endpoints_allows_them(alice, monkeypatch, url):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    assert put(alice, base_url=url)[0] == 200


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://u:p@127.0.0.1/", "http://127.0.0.1/#x"])
def test_malformed_urls_are_refused_even_where_private_is_allowed(alice, monkeypatch, url):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    assert put(alice, base_url=url)[0] == 422


def test_allow_private_endpoints_must_say_true(alice, monkeypatch):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "1")
    assert put(alice, base_url="http://127.0.0.1/")[0] == 422


# --- check_endpoint for the runner ----------------------------------------------------------


def test_check_endpoint_answers_the_vetted_addresses(aws_env):
    assert user_providers.check_endpoint("https://api.example.com/v1") == [
        PUBLIC_IP,
        "2606:2800:220:1:248:1893:25c8:1946",
    ]
    assert user_providers.check_endpoint("http://8.8.8.8/") == ["8.8.8.8"]


def test_check_endpoint_sees_dns_change_at_request_time(aws_env, monkeypatch):
    """What the runner relies on: a name that turned private after it was saved is refused."""
    assert user_providers.check_endpoint("https://vllm.example.com/v1") == [PUBLIC_IP]
    monkeypatch.setitem(FAKE_DNS, "vllm.example.com", ["169.254.169.254"])
    with pytest.raises(user_providers.EndpointRefused) as refused:
        user_providers.check_endpoint("https://vllm.example.com/v1")
    assert "link-local" in refused.value.reason


def test_check_endpoint_vets_nothing_where_private_endpoints_are_allowed(aws_env, monkeypatch, fake_dns):
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")
    assert user_providers.check_endpoint("http://127.0.0.1:8503/v1") == []
    assert fake_dns == []


@pytest.mark.parametrize(
    "host, address",
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.0.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("1.2.3.4", "1.2.3.4"),
        ("::1", "::1"),
        ("example.com", None),
        ("1e100.net", None),
    ],
)
def test_literal_ip_reads_every_form_the_resolver_accepts(host, address):
    found = user_providers.literal_ip(host)
    assert (str(found) if found else None) == address


# --- schedules may name the user's own models -----------------------------------------------

SCHEDULE = {"name": "Local vs cloud", "prompt": "Hi", "interval_hours": 24}


def test_schedule_may_name_own_provider_model(alice, bob):
    put(alice)
    models = ["myvllm/llama-3", "myvllm/meta-llama/Llama-3.1-8B-Instruct", "gpt-4o-mini"]
    status, data = alice.post("/api/schedules", {**SCHEDULE, "models": models})
    assert status == 200, data
    assert data["schedule"]["models"] == models

    status, data = bob.post("/api/schedules", {**SCHEDULE, "models": ["myvllm/llama-3"]})
    assert status == 422
    assert data["detail"][0]["model"] == "myvllm/llama-3"


def test_schedule_may_not_name_an_unlisted_model_or_a_deleted_provider(alice):
    put(alice)
    status, data = alice.post("/api/schedules", {**SCHEDULE, "models": ["myvllm/other"]})
    assert status == 422 and data["detail"][0]["model"] == "myvllm/other"
    alice.delete("/api/providers/myvllm")
    status, data = alice.post("/api/schedules", {**SCHEDULE, "models": ["myvllm/llama-3"]})
    assert status == 422


def test_load_feeds_the_catalog(aws):
    ProviderModel(
        "u1", "myvllm", kind="openai", base_url="http://8.8.8.8/v1",
        models=[{"id": "llama-3", "input_cost_per_mtok": 0.5}], updated_at="2026-01-01T00:00:00.000000Z",
    ).save()
    (info,) = user_providers.load("u1")
    assert info.key == "myvllm" and info.builtin is False
    assert info.model("llama-3").input_cost_per_mtok == 0.5
    assert info.model("llama-3").output_cost_per_mtok is None
