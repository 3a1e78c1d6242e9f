"""The WebSocket handlers with API Gateway-shaped events, under moto (DESIGN §5).

Events are built by the dev stack gateway's own `ws_event`, so the gateway and these tests
send the handlers the same shape. moto mocks `apigatewaymanagementapi` in-process: every
post to a connection is appended to that connection's `data` there; moto cannot answer
410 Gone, so the gone-connection tests put a small fake client in the notifier's cache.
"""
from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import quote

import jwt
import pytest
from botocore.exceptions import ClientError

import app as app_module
from chalicelib import aws_clients, connections, jobs, notify, websocket
from chalicelib.tables import ConnectionModel, JobModel
from devstack.ws_gateway import new_connection_id, ws_event

DOMAIN = "abc123def4.execute-api.us-east-1.amazonaws.com"
ENDPOINT = f"https://{DOMAIN}/api"


@pytest.fixture(autouse=True)
def fresh_clients():
    """Management API clients are cached per endpoint; each test starts with none."""
    aws_clients.reset()
    yield
    aws_clients.reset()


# --- helpers --------------------------------------------------------------------------------


def connect(
    token: str | None, connection_id: str | None = None, *, query: str | None = None, **headers: str
) -> tuple[str, dict]:
    """`$connect` with `?token=` (or the given query string)."""
    connection_id = connection_id or new_connection_id()
    if query is None and token is not None:
        query = f"token={token}"
    event = ws_event(
        "$connect",
        connection_id,
        domain_name=DOMAIN,
        headers=[("Host", DOMAIN), ("X-Forwarded-Proto", "https"), *headers.items()],
        query=query,
    )
    return connection_id, app_module.ws_connect(event, None)


def connected(token: str) -> str:
    connection_id, answer = connect(token)
    assert answer["statusCode"] == 200, answer
    return connection_id


def message(connection_id: str, body: str | None, *, binary: bool = False) -> None:
    event = ws_event("$default", connection_id, domain_name=DOMAIN, body=body)
    event["isBase64Encoded"] = binary
    assert app_module.ws_message(event, None) == {"statusCode": 200}


def disconnect(connection_id: str) -> None:
    event = ws_event("$disconnect", connection_id, domain_name=DOMAIN, close_code=1000)
    assert app_module.ws_disconnect(event, None) == {"statusCode": 200}


def posted(connection_id: str) -> list[dict]:
    """Every message moto's management API received for the connection, in order."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    # moto keys connections by the id as it appears in the URL (percent-encoded)
    connection = backend.connections.get(quote(connection_id, safe=""))
    text = connection.data.decode("utf-8") if connection else ""
    decoder, messages, at = json.JSONDecoder(), [], 0
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        messages.append(value)
    return messages


def replies(connection_id: str) -> list[dict]:
    """The messages that answer the client (not job events the registry pushed)."""
    return [m for m in posted(connection_id) if not m["type"].startswith("job_")]


def counter(user_id: str) -> int | None:
    try:
        return ConnectionModel.get(connections.counter_key(user_id), consistent_read=True).open_count
    except ConnectionModel.DoesNotExist:
        return None


def records(user_id: str) -> list[ConnectionModel]:
    return list(ConnectionModel.by_user.query(user_id))


# --- $connect -------------------------------------------------------------------------------


def test_connect_stores_the_connection_with_its_callback_endpoint_and_a_2h_ttl(clock, alice):
    connection_id = connected(alice.token)

    item = ConnectionModel.get(connection_id)
    assert item.user_id == alice.id
    assert item.endpoint == ENDPOINT
    assert item.connected_at == "2026-11-30T09:00:00.000000Z"
    assert item.ttl == clock() + timedelta(hours=2)
    assert counter(alice.id) == 1


def test_the_endpoint_rule_follows_the_forwarded_scheme_and_defaults_to_https():
    def endpoint(headers: dict) -> str:
        event = ws_event("$connect", "c", domain_name="h:1", stage="api", headers=list(headers.items()))
        return websocket.endpoint_of(event)

    assert endpoint({"X-Forwarded-Proto": "https"}) == "https://h:1/api"
    assert endpoint({"x-forwarded-proto": "http"}) == "http://h:1/api"  # the dev stack's gateway
    assert endpoint({}) == "https://h:1/api"
    assert endpoint({"X-Forwarded-Proto": "gopher"}) == "https://h:1/api"


def _forged(alice) -> str:
    claims = jwt.decode(alice.token, options={"verify_signature": False})
    return jwt.encode(claims, "not-the-secret-but-long-enough-for-hs256", algorithm="HS256")


def _unsigned(alice) -> str:
    claims = jwt.decode(alice.token, options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda alice: None, id="missing"),
        pytest.param(lambda alice: "", id="empty"),
        pytest.param(lambda alice: "not-a-jwt", id="garbage"),
        pytest.param(_forged, id="forged"),
        pytest.param(_unsigned, id="alg-none"),
    ],
)
def test_a_bad_token_is_refused_with_401_and_nothing_is_stored(clock, alice, make_token):
    connection_id, answer = connect(make_token(alice))

    assert answer["statusCode"] == 401
    assert "error" in json.loads(answer["body"])
    assert records(alice.id) == []
    assert counter(alice.id) is None


def test_an_expired_token_is_refused(clock, alice):
    clock.advance(hours=24, seconds=1)

    _, answer = connect(alice.token)

    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": "Invalid or expired token"}


def test_exactly_five_of_eight_concurrent_connects_of_one_user_succeed(clock, alice, bob):
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        _, answer = connect(alice.token)
        with lock:
            statuses.append(answer["statusCode"])

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] * 5 + [429] * 3
    assert len(records(alice.id)) == 5
    assert counter(alice.id) == 5
    # the limit is per user: bob is unaffected
    connected(bob.token)


def test_the_sixth_connection_is_refused_with_429_and_a_disconnect_frees_a_place(clock, alice):
    ids = [connected(alice.token) for _ in range(5)]

    _, answer = connect(alice.token)
    assert answer["statusCode"] == 429
    assert json.loads(answer["body"])["detail"] == {"limit": 5}

    disconnect(ids[0])
    assert counter(alice.id) == 4
    connected(alice.token)
    assert counter(alice.id) == 5


def test_a_duplicate_disconnect_decrements_once(clock, alice):
    first, second = connected(alice.token), connected(alice.token)

    disconnect(first)
    disconnect(first)
    assert counter(alice.id) == 1

    barrier = threading.Barrier(4)

    def racing_disconnect() -> None:
        barrier.wait()
        disconnect(second)

    threads = [threading.Thread(target=racing_disconnect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert counter(alice.id) == 0
    assert records(alice.id) == []


def test_a_repeated_connect_of_the_same_connection_counts_once(clock, alice, bob):
    connection_id = connected(alice.token)

    _, again = connect(alice.token, connection_id)
    _, stolen = connect(bob.token, connection_id)

    assert again["statusCode"] == 200
    assert stolen["statusCode"] == 409
    assert counter(alice.id) == 1 and counter(bob.id) in (None, 0)


# --- the self-healing counter -------------------------------------------------------------


def test_records_deleted_behind_the_counters_back_are_recounted_at_the_limit(clock, alice):
    ids = [connected(alice.token) for _ in range(5)]
    ConnectionModel(ids[0]).delete()  # as DynamoDB's TTL does: no $disconnect, no decrement
    ConnectionModel(ids[1]).delete()
    clock.advance(seconds=11)  # past the GSI settle margin

    connected(alice.token)

    assert counter(alice.id) == 4
    assert len(records(alice.id)) == 4


def test_the_heal_waits_while_a_connect_may_not_be_on_the_gsi_yet(clock, alice):
    ids = [connected(alice.token) for _ in range(5)]
    ConnectionModel(ids[0]).delete()

    _, answer = connect(alice.token)  # the last connect was just now: no recount yet

    assert answer["statusCode"] == 429
    assert counter(alice.id) == 5
    clock.advance(seconds=11)
    connected(alice.token)


def test_expired_connections_stop_counting_and_are_deleted(clock, alice):
    for _ in range(5):
        connected(alice.token)
    clock.advance(hours=2, seconds=1)  # API Gateway closed them all; no $disconnect came

    fresh = connected(alice.token)

    assert [item.connection_id for item in records(alice.id)] == [fresh]
    assert counter(alice.id) == 1


# --- $default: ping, sync, cancel, errors ----------------------------------------------------


def test_ping_is_answered_with_pong_on_the_same_connection(clock, alice):
    connection_id, other = connected(alice.token), connected(alice.token)

    message(connection_id, '{"type": "ping"}')

    assert posted(connection_id) == [{"type": "pong"}]
    assert posted(other) == []


def test_sync_answers_the_users_active_and_recent_jobs(clock, alice, bob):
    connection_id = connected(alice.token)
    running = jobs.submit("benchmark", alice.id, {"schedule_id": "s1"})
    done = jobs.submit("benchmark", alice.id, {"schedule_id": "s2"})
    jobs.cancel(done.job_id, alice.id)
    jobs.submit("benchmark", bob.id, {"schedule_id": "s3"})

    message(connection_id, '{"type": "sync"}')

    [reply] = replies(connection_id)
    assert reply["type"] == "sync"
    assert [job["id"] for job in reply["active_jobs"]] == [running.job_id]
    assert [job["id"] for job in reply["recent_jobs"]] == [done.job_id]
    assert set(reply["active_jobs"][0]) >= {"id", "job_type", "status", "progress_pct", "created_at"}


def test_cancel_cancels_the_users_own_job(clock, alice):
    connection_id = connected(alice.token)
    job = jobs.submit("benchmark", alice.id, {"schedule_id": "s1"})

    message(connection_id, json.dumps({"type": "cancel", "job_id": job.job_id}))

    assert replies(connection_id) == [{"type": "cancelled", "job_id": job.job_id}]
    assert JobModel.get(job.job_id).status == jobs.CANCELLED
    # the registry's own event reached the client too
    assert {"type": "job_cancelled", "job_id": job.job_id} in posted(connection_id)


def test_cancel_of_another_users_job_is_not_found_and_changes_nothing(clock, alice, bob):
    connection_id = connected(alice.token)
    job = jobs.submit("benchmark", bob.id, {"schedule_id": "s1"})

    message(connection_id, json.dumps({"type": "cancel", "job_id": job.job_id}))

    assert replies(connection_id) == [
        {"type": "error", "error": "Job not found", "job_id": job.job_id}
    ]
    assert JobModel.get(job.job_id).status == jobs.PENDING


def test_cancel_of_an_ended_job_is_an_error(clock, alice):
    connection_id = connected(alice.token)
    job = jobs.submit("benchmark", alice.id, {"schedule_id": "s1"})
    jobs.cancel(job.job_id, alice.id)

    message(connection_id, json.dumps({"type": "cancel", "job_id": job.job_id}))

    assert replies(connection_id) == [
        {"type": "error", "error": "Job is already cancelled", "job_id": job.job_id}
    ]


@pytest.mark.parametrize(
    "body, error",
    [
        ("{not json", "Invalid JSON"),
        ("", "Invalid JSON"),
        (None, "Invalid JSON"),
        ("[1, 2]", 'A message must be a JSON object like {"type": "ping"}'),
        ('"ping"', 'A message must be a JSON object like {"type": "ping"}'),
        ("{}", "Unknown message type: 'None' (expected ping, sync or cancel)"),
        ('{"type": "reboot"}', "Unknown message type: 'reboot' (expected ping, sync or cancel)"),
        ('{"type": 7}', "Unknown message type: '7' (expected ping, sync or cancel)"),
        ('{"type": "cancel"}', "job_id is required (a string)"),
        ('{"type": "cancel", "job_id": 12}', "job_id is required (a string)"),
        pytest.param("[" * 30_000, "JSON nests too deeply (at most 32 levels)", id="deep"),
        pytest.param('{"type": "ping", "x": ' + "[" * 40 + "]" * 40 + "}", "JSON nests too deeply (at most 32 levels)", id="nested"),
        pytest.param('{"type": "ping", "pad": "' + "x" * 40_000 + '"}', "Message too large (at most 32768 characters)", id="large"),
    ],
)
def test_malformed_messages_get_an_error_and_the_connection_stays(clock, alice, body, error):
    connection_id = connected(alice.token)

    message(connection_id, body)
    message(connection_id, '{"type": "ping"}')

    assert posted(connection_id) == [{"type": "error", "error": error}, {"type": "pong"}]
    assert connections.get(connection_id) is not None


def test_a_binary_message_gets_an_error(clock, alice):
    connection_id = connected(alice.token)

    message(connection_id, "AAEC", binary=True)

    assert posted(connection_id) == [{"type": "error", "error": "Binary messages are not supported"}]


def test_an_unexpected_failure_is_an_internal_error_message(clock, alice, monkeypatch):
    connection_id = connected(alice.token)

    def broken(user_id):
        raise RuntimeError("boom: secret detail")

    monkeypatch.setattr(jobs, "active_and_recent", broken)
    message(connection_id, '{"type": "sync"}')

    assert posted(connection_id) == [{"type": "error", "error": "Internal error"}]


def test_a_message_from_an_unregistered_connection_is_dropped(clock, alice):
    message("never-connected=", '{"type": "ping"}')

    assert posted("never-connected=") == []


# --- $disconnect ------------------------------------------------------------------------------


def test_disconnect_deletes_the_connection(clock, alice):
    connection_id = connected(alice.token)

    disconnect(connection_id)

    assert connections.get(connection_id) is None
    assert counter(alice.id) == 0


def test_disconnect_of_an_unknown_connection_does_nothing(clock, alice):
    connected(alice.token)

    disconnect("unknown=")

    assert counter(alice.id) == 1


# --- the notifier -------------------------------------------------------------------------------


def test_the_app_sends_events_through_the_api_gateway_notifier():
    import app  # noqa: F401 - every Lambda imports app, which wires the notifier

    assert notify.current() is websocket.notifier


def test_send_to_user_reaches_every_connection_of_the_user_and_no_other(clock, alice, bob):
    mine = [connected(alice.token) for _ in range(3)]
    theirs = connected(bob.token)

    notify.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})

    for connection_id in mine:
        assert posted(connection_id) == [{"type": "job_started", "job_id": "j1"}]
    assert posted(theirs) == []


def test_send_to_user_without_connections_posts_nothing(clock, alice, bob, management_api):
    fake = management_api(FakeManagementApi(gone=set()))
    theirs = connected(bob.token)

    websocket.notifier.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})

    assert fake.sent == {} and fake.probed == []
    assert connections.get(theirs) is not None and counter(bob.id) == 1


@pytest.fixture
def management_api(monkeypatch):
    """Install a fake `@connections` API (API Gateway's 410s and 500s on demand)."""

    def install(fake: "FakeManagementApi") -> "FakeManagementApi":
        monkeypatch.setattr(websocket, "management_client", lambda endpoint: fake)
        return fake

    return install


class FakeManagementApi:
    """`post_to_connection` as API Gateway answers it: 410 for gone connections."""

    def __init__(self, gone: set[str], failing: set[str] = frozenset()):
        self.gone, self.failing = gone, failing
        self.sent: dict[str, list[dict]] = {}
        self.probed: list[str] = []
        self.closed: list[str] = []
        self._lock = threading.Lock()

    def _answer(self, connection_id: str, operation: str) -> None:
        if connection_id in self.gone:
            raise ClientError(
                {"Error": {"Code": "GoneException", "Message": None},
                 "ResponseMetadata": {"HTTPStatusCode": 410}},
                operation,
            )
        if connection_id in self.failing:
            raise ClientError(
                {"Error": {"Code": "InternalServerErrorException", "Message": "x"},
                 "ResponseMetadata": {"HTTPStatusCode": 500}},
                operation,
            )

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> dict:
        self._answer(ConnectionId, "PostToConnection")
        with self._lock:
            self.sent.setdefault(ConnectionId, []).append(json.loads(Data))
        return {}

    def delete_connection(self, ConnectionId: str) -> dict:
        with self._lock:
            self.closed.append(ConnectionId)
        self._answer(ConnectionId, "DeleteConnection")
        return {}

    def get_connection(self, ConnectionId: str) -> dict:
        with self._lock:
            self.probed.append(ConnectionId)
        self._answer(ConnectionId, "GetConnection")
        return {"ConnectedAt": "2026-11-30T09:00:00Z", "Identity": {"SourceIp": "192.0.2.1"}}


def test_a_gone_connection_is_deleted_when_a_send_finds_it(clock, alice, management_api):
    alive, gone = connected(alice.token), connected(alice.token)
    fake = FakeManagementApi(gone={gone})
    management_api(fake)

    notify.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})

    assert fake.sent == {alive: [{"type": "job_started", "job_id": "j1"}]}
    assert connections.get(gone) is None
    assert counter(alice.id) == 1
    disconnect(gone)  # API Gateway's late $disconnect for it changes nothing
    assert counter(alice.id) == 1


def test_a_reply_to_a_gone_connection_deletes_it(clock, alice, management_api):
    connection_id = connected(alice.token)
    management_api(FakeManagementApi(gone={connection_id}))

    message(connection_id, '{"type": "ping"}')

    assert connections.get(connection_id) is None


def test_other_post_errors_are_swallowed_and_keep_the_connection(clock, alice, management_api, caplog):
    failing, alive = connected(alice.token), connected(alice.token)
    fake = FakeManagementApi(gone=set(), failing={failing})
    management_api(fake)

    websocket.notifier.send_to_user(alice.id, {"type": "job_failed", "job_id": "j1", "error": "e"})

    assert fake.sent == {alive: [{"type": "job_failed", "job_id": "j1", "error": "e"}]}
    assert connections.get(failing) is not None
    assert "InternalServerErrorException" in caplog.text
    assert "job_failed" not in caplog.text  # logs name the failure, not the message


def test_the_notifier_never_raises_even_when_dynamodb_fails(clock, alice, monkeypatch, caplog):
    def broken(user_id):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(connections, "of_user", broken)

    assert websocket.notifier.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"}) is None
    assert f"events for {alice.id} not sent" in caplog.text and "RuntimeError" in caplog.text


# --- the heal asks API Gateway about older connections ----------------------------------------


def test_at_the_limit_connections_api_gateway_calls_gone_are_removed(clock, alice, management_api):
    ids = [connected(alice.token) for _ in range(5)]
    management_api(FakeManagementApi(gone={ids[0], ids[3]}))
    clock.advance(seconds=11)  # past the handshake/GSI settle margin

    fresh = connected(alice.token)

    assert sorted(i.connection_id for i in records(alice.id)) == sorted([ids[1], ids[2], ids[4], fresh])
    assert counter(alice.id) == 4


def test_young_connections_are_never_probed_away(clock, alice, management_api):
    ids = [connected(alice.token) for _ in range(5)]
    management_api(FakeManagementApi(gone=set(ids)))  # mid-handshake: 410 too

    _, answer = connect(alice.token)

    assert answer["statusCode"] == 429
    assert len(records(alice.id)) == 5


def test_a_probe_that_fails_otherwise_keeps_the_connection(clock, alice, management_api):
    ids = [connected(alice.token) for _ in range(5)]
    management_api(FakeManagementApi(gone=set(), failing=set(ids)))
    clock.advance(seconds=11)

    _, answer = connect(alice.token)

    assert answer["statusCode"] == 429
    assert counter(alice.id) == 5


# --- tokens: expiry, logout, tickets ----------------------------------------------------------


def test_a_connection_lasts_no_longer_than_the_token_that_opened_it(clock, alice):
    clock.advance(hours=23)  # alice's token has one hour left

    connection_id = connected(alice.token)

    token_exp = jwt.decode(alice.token, options={"verify_signature": False})["exp"]
    assert ConnectionModel.get(connection_id).ttl.timestamp() == token_exp


def test_an_expired_connection_gets_no_events_and_its_next_message_closes_it(clock, alice, management_api):
    clock.advance(hours=23)
    connection_id = connected(alice.token)
    fake = management_api(FakeManagementApi(gone=set()))
    clock.advance(hours=1, seconds=1)

    websocket.notifier.send_to_user(alice.id, {"type": "job_started", "job_id": "j1"})
    assert fake.sent == {}

    message(connection_id, '{"type": "ping"}')
    assert fake.sent[connection_id] == [
        {"type": "error", "error": "Token expired: connect again with a new ticket"}
    ]
    assert fake.closed == [connection_id]
    assert records(alice.id) == [] and counter(alice.id) == 0


def test_logout_revokes_the_token_and_closes_the_users_websockets(clock, alice, bob, management_api):
    fake = management_api(FakeManagementApi(gone=set()))
    mine = [connected(alice.token), connected(alice.token)]
    theirs = connected(bob.token)

    assert alice.post("/api/auth/logout") == (200, {"status": "ok", "connections_closed": 2})

    assert sorted(fake.closed) == sorted(mine)
    assert records(alice.id) == [] and counter(alice.id) == 0
    assert connections.get(theirs) is not None
    assert connect(alice.token)[1]["statusCode"] == 401
    assert alice.get("/api/schedules")[0] == 401
    assert bob.get("/api/schedules")[0] == 200


def _ticket(api) -> str:
    status, data = api.post("/api/ws-ticket")
    assert status == 200, data
    assert data["expires_in"] == 30 and set(data) == {"ticket", "expires_in"}
    return data["ticket"]


def test_a_ticket_opens_one_connection_once(clock, alice):
    ticket = _ticket(alice)

    connection_id, answer = connect(None, query=f"ticket={ticket}")
    assert answer["statusCode"] == 200
    assert connections.get(connection_id).user_id == alice.id

    _, again = connect(None, query=f"ticket={ticket}")
    assert again["statusCode"] == 401
    assert json.loads(again["body"]) == {"error": "Invalid or expired ticket"}


def test_a_ticket_expires_after_30_seconds(clock, alice):
    ticket = _ticket(alice)
    clock.advance(seconds=30)
    assert connect(None, query=f"ticket={ticket}")[1]["statusCode"] == 401


def test_a_ticket_of_a_user_who_logged_out_since_is_refused(clock, alice, management_api):
    management_api(FakeManagementApi(gone=set()))
    ticket = _ticket(alice)
    alice.post("/api/auth/logout")
    assert connect(None, query=f"ticket={ticket}")[1]["statusCode"] == 401


def test_a_ticket_connection_lasts_no_longer_than_the_token_that_asked_for_it(clock, alice):
    clock.advance(hours=23, minutes=30)
    connection_id, _ = connect(None, query=f"ticket={_ticket(alice)}")
    token_exp = jwt.decode(alice.token, options={"verify_signature": False})["exp"]
    assert ConnectionModel.get(connection_id).ttl.timestamp() == token_exp


@pytest.mark.parametrize("ticket", ["", "x", "a" * 43, "a" * 5000, "%00" * 20, "ticket with spaces"])
def test_unknown_or_malformed_tickets_are_refused(clock, alice, ticket):
    _, answer = connect(None, query=f"ticket={quote(ticket)}")
    assert answer["statusCode"] == 401
    assert records(alice.id) == []


def test_of_eight_connects_racing_with_one_ticket_exactly_one_wins(clock, alice):
    ticket = _ticket(alice)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def attempt() -> None:
        barrier.wait()
        statuses.append(connect(None, query=f"ticket={ticket}")[1]["statusCode"])

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 7
    assert len(records(alice.id)) == 1


def test_only_a_hash_of_the_ticket_is_stored(clock, alice):
    from chalicelib.tables import TicketModel

    ticket = _ticket(alice)
    stored = json.dumps([item.attribute_values for item in TicketModel.scan()], default=str)
    assert ticket not in stored
    assert all(item.ttl is not None for item in TicketModel.scan())


def test_tickets_per_minute_are_capped(clock, alice, monkeypatch):
    monkeypatch.setenv("WS_TICKETS_PER_MINUTE", "3")
    for _ in range(3):
        _ticket(alice)
    response = alice.client.http.post("/api/ws-ticket", headers=alice.headers())
    assert response.status_code == 429
    assert json.loads(response.body)["detail"] == {"limit": 3}
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    clock.advance(minutes=1)
    _ticket(alice)


def test_the_token_in_the_url_still_works_for_existing_clients(clock, alice):
    assert connect(alice.token)[1]["statusCode"] == 200


def test_a_connect_without_ticket_or_token_is_refused(clock, alice):
    assert connect(None)[1]["statusCode"] == 401


def test_a_sync_answer_over_api_gateways_limit_keeps_the_newest_jobs_and_says_so(clock, alice):
    connection_id = connected(alice.token)
    submitted = []
    for i in range(12):
        clock.advance(seconds=1)
        job = jobs.submit("benchmark", alice.id, {"schedule_id": f"s{i}"})
        JobModel(job.job_id).update(actions=[JobModel.progress_detail.set(f"{i}:" + "x" * 12_000)])
        submitted.append(job.job_id)

    message(connection_id, '{"type": "sync"}')

    [reply] = replies(connection_id)
    assert reply["truncated"] is True
    assert len(websocket.encode(reply)) <= 128 * 1024
    kept = [job["id"] for job in reply["active_jobs"]]
    assert 0 < len(kept) < 12
    assert kept == submitted[::-1][: len(kept)]  # the newest


def test_a_sync_answer_within_the_limit_is_not_marked_truncated(clock, alice):
    connection_id = connected(alice.token)
    jobs.submit("benchmark", alice.id, {"schedule_id": "s1"})
    message(connection_id, '{"type": "sync"}')
    assert "truncated" not in replies(connection_id)[0]
