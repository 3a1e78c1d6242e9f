"""Per-user caps (kept by DynamoDB conditions, raced with threads) and paged lists."""
from __future__ import annotations

import socket
import threading

import pytest

from chalicelib import paging, schedules, user_providers
from chalicelib.errors import ApiError
from chalicelib.tables import ProviderModel, ScheduleModel, UserModel

SCHEDULE = {"name": "s", "models": ["gpt-4o-mini"], "prompt": "Say hello.", "interval_hours": 1}
PROVIDER = {"kind": "openai", "base_url": "https://vllm.example.com/v1", "models": [{"id": "llama-3"}]}


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    def getaddrinfo(host, port, *args, **kwargs):
        if host != "vllm.example.com":
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def race(count: int, action) -> list[int]:
    """`action(i)` in `count` threads released together; the status each would answer.

    The actions call `chalicelib` directly: `chalice.test.Client` swaps `os.environ` for a
    copy around each request, so concurrent requests through it can leave a stale copy
    (with this test's settings) as `os.environ` for the rest of the session."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            action(i)
            status = 200
        except ApiError as err:
            status = err.status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def counted(user_id: str, attribute: str) -> int:
    return int(getattr(UserModel.get(user_id, consistent_read=True), attribute) or 0)


# --- schedules -------------------------------------------------------------------------------


def test_the_caps_have_their_documented_defaults():
    from chalicelib import quotas

    assert (quotas.SCHEDULES.limit(), quotas.PROVIDERS.limit(), quotas.max_models_per_provider()) == (200, 50, 200)


def test_schedules_beyond_the_cap_are_refused_naming_it_and_a_delete_frees_a_place(alice, bob, monkeypatch):
    monkeypatch.setenv("MAX_SCHEDULES_PER_USER", "3")
    ids = [alice.post("/api/schedules", SCHEDULE)[1]["id"] for _ in range(3)]

    status, data = alice.post("/api/schedules", SCHEDULE)

    assert status == 422
    assert data["detail"] == [{
        "field": "schedules",
        "message": "at most 3 schedules per user (MAX_SCHEDULES_PER_USER): delete one first",
        "limit": {"max": 3},
    }]
    assert ScheduleModel.count(alice.id) == 3
    assert bob.post("/api/schedules", SCHEDULE)[0] == 200
    assert alice.delete(f"/api/schedules/{ids[0]}")[0] == 200
    assert alice.post("/api/schedules", SCHEDULE)[0] == 200
    assert counted(alice.id, "schedule_count") == 3


def test_eight_racing_creates_never_pass_the_schedule_cap(alice, monkeypatch):
    monkeypatch.setenv("MAX_SCHEDULES_PER_USER", "5")
    for _ in range(2):
        alice.post("/api/schedules", SCHEDULE)

    statuses = race(8, lambda i: schedules.create(alice.id, schedules.ScheduleCreate(**SCHEDULE)))

    assert statuses == [200] * 3 + [422] * 5
    assert ScheduleModel.count(alice.id) == 5 == counted(alice.id, "schedule_count")


def test_racing_deletes_of_one_schedule_give_back_one_place(alice):
    schedule_id = alice.post("/api/schedules", SCHEDULE)[1]["id"]
    alice.post("/api/schedules", SCHEDULE)

    statuses = race(6, lambda i: schedules.delete(alice.id, schedule_id))

    assert statuses == [200] + [404] * 5
    assert counted(alice.id, "schedule_count") == 1


def test_a_create_whose_first_attempt_was_applied_is_not_refused(alice, monkeypatch):
    """A retried TransactWriteItems whose first answer was lost finds its own schedule."""
    from chalicelib import writes

    real = writes.Tx.commit

    def applied_then_retried(self):
        real(self)
        return real(self)

    with monkeypatch.context() as patched:
        patched.setattr(writes.Tx, "commit", applied_then_retried)
        status, data = alice.post("/api/schedules", SCHEDULE)

    assert status == 200, data
    assert ScheduleModel.count(alice.id) == 1 == counted(alice.id, "schedule_count")


def _schedules(clock, api, count: int, **overrides) -> list[str]:
    ids = []
    for i in range(count):
        clock.advance(seconds=1)
        ids.append(api.post("/api/schedules", {**SCHEDULE, "name": f"s{i}", **overrides})[1]["id"])
    return ids


def _all_pages(api, path: str, field: str, limit: int | None = None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = [f"limit={limit}"] if limit else []
        query += [f"cursor={cursor}"] if cursor else []
        status, data = api.get(path + ("?" + "&".join(query) if query else ""))
        assert status == 200, data
        pages.append([entry.get("id") or entry.get("provider_key") for entry in data[field]])
        cursor = data["next_cursor"]
        if cursor is None:
            return pages


def test_schedules_come_newest_first_in_pages(clock, alice):
    ids = _schedules(clock, alice, 5)
    newest_first = ids[::-1]

    assert _all_pages(alice, "/api/schedules", "schedules") == [newest_first]
    assert _all_pages(alice, "/api/schedules", "schedules", limit=2) == [
        newest_first[:2], newest_first[2:4], newest_first[4:]
    ]


def test_a_page_stops_before_lambdas_answer_limit(clock, alice, monkeypatch):
    ids = _schedules(clock, alice, 5, prompt="x" * 2000)
    monkeypatch.setattr(paging, "PAGE_BYTES", 5000)

    pages = _all_pages(alice, "/api/schedules", "schedules")

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sum(pages, []) == ids[::-1]


def test_a_cursor_only_pages_through_the_callers_own_schedules(clock, alice, bob):
    _schedules(clock, bob, 3)
    _schedules(clock, alice, 1)
    bobs_cursor = bob.get("/api/schedules?limit=1")[1]["next_cursor"]

    status, data = alice.get(f"/api/schedules?cursor={bobs_cursor}")

    assert status == 200
    assert all(s["name"] == "s0" for s in data["schedules"])  # alice's own, never bob's
    assert len(data["schedules"]) <= 1


@pytest.mark.parametrize(
    "query,parameter",
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=201", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJrIjogMX0", "cursor"),  # {"k": 1}
        ("cursor=" + "A" * 600, "cursor"),
        ("page=2", "page"),
    ],
)
@pytest.mark.parametrize("path", ["/api/schedules", "/api/providers", "/api/keys"])
def test_bad_paging_parameters_are_422_naming_them(alice, path, query, parameter):
    if path != "/api/schedules" and query == "limit=201":
        query = "limit=55"  # the providers' most: 4 built-ins at most + 50
    status, data = alice.get(f"{path}?{query}")
    assert status == 422, data
    assert data["detail"][0]["field"] == parameter
    assert data["error"].startswith(f"Invalid query parameter '{parameter}'")


# --- providers -------------------------------------------------------------------------------


def test_providers_beyond_the_cap_are_refused_and_replacing_one_is_not_a_new_one(alice, monkeypatch):
    monkeypatch.setenv("MAX_PROVIDERS_PER_USER", "2")
    assert alice.put("/api/providers/one", PROVIDER)[0] == 200
    assert alice.put("/api/providers/two", PROVIDER)[0] == 200

    status, data = alice.put("/api/providers/three", PROVIDER)
    assert status == 422 and data["detail"][0]["field"] == "providers"
    assert data["detail"][0]["limit"] == {"max": 2}

    assert alice.put("/api/providers/two", {**PROVIDER, "kind": "anthropic"})[0] == 200
    assert alice.delete("/api/providers/one")[0] == 200
    assert alice.put("/api/providers/three", PROVIDER)[0] == 200
    assert counted(alice.id, "provider_count") == 2


def test_eight_racing_creates_never_pass_the_provider_cap(alice, monkeypatch):
    monkeypatch.setenv("MAX_PROVIDERS_PER_USER", "3")

    body = user_providers.ProviderBody(**PROVIDER)
    statuses = race(8, lambda i: user_providers.put_provider(alice.id, f"p{i}", body))

    assert statuses == [200] * 3 + [422] * 5
    assert ProviderModel.count(alice.id) == 3 == counted(alice.id, "provider_count")


def test_racing_puts_of_one_provider_count_it_once(alice):
    body = user_providers.ProviderBody(**PROVIDER)
    statuses = race(8, lambda i: user_providers.put_provider(alice.id, "same", body))
    assert statuses == [200] * 8
    assert counted(alice.id, "provider_count") == 1


def test_models_beyond_the_cap_are_refused_naming_it(alice, monkeypatch):
    monkeypatch.setenv("MAX_MODELS_PER_PROVIDER", "3")
    status, data = alice.put("/api/providers/p", {**PROVIDER, "models": [{"id": f"m{i}"} for i in range(4)]})
    assert status == 422
    assert data["detail"][0] == {"field": "models", "message": "at most 3 models per provider", "limit": {"max_length": 3}}
    assert alice.put("/api/providers/p", {**PROVIDER, "models": [{"id": f"m{i}"} for i in range(3)]})[0] == 200


@pytest.mark.parametrize("path,field", [("/api/providers", "providers"), ("/api/keys", "keys")])
def test_providers_and_keys_come_in_pages_built_ins_first(kms, alice, path, field):
    for key in ("zeta", "alpha", "mid"):
        alice.put(f"/api/providers/{key}", PROVIDER)
    everything = ["openai", "anthropic", "gemini", "alpha", "mid", "zeta"]

    assert _all_pages(alice, path, field) == [everything]
    assert _all_pages(alice, path, field, limit=4) == [everything[:4], everything[4:]]


def test_a_page_continues_after_a_provider_deleted_since(alice):
    for key in ("a", "b", "c"):
        alice.put(f"/api/providers/{key}", PROVIDER)
    cursor = alice.get("/api/providers?limit=4")[1]["next_cursor"]  # ... gemini, a
    alice.delete("/api/providers/a")

    _, data = alice.get(f"/api/providers?cursor={cursor}")

    assert [p["provider_key"] for p in data["providers"]] == ["b", "c"]
