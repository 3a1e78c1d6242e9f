"""Registration, login and the JWT authorizer on every protected route."""
from __future__ import annotations

import base64
import json
import threading

import jwt
import pytest

from chalicelib import auth
from chalicelib.tables import UserModel

SECRET = "test-secret-that-is-long-enough-for-hs256"


def test_register_answers_user_and_bearer_token(anonymous):
    status, data = anonymous.post(
        "/api/auth/register", {"email": "Ann@Example.com", "password": "password123"}
    )
    assert status == 200
    assert data["token_type"] == "bearer"
    assert data["user"]["email"] == "ann@example.com"
    assert set(data["user"]) == {"id", "email", "role"}
    claims = jwt.decode(data["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == data["user"]["id"]
    assert claims["exp"] - claims["iat"] == 24 * 3600


def test_first_user_is_admin_and_later_users_are_not(make_user):
    assert make_user().user["role"] == "admin"
    assert make_user().user["role"] == "user"
    assert make_user().user["role"] == "user"


def test_login_with_right_password_gives_a_working_token(anonymous, make_user):
    make_user("carol@example.com", "s3cret-pass")
    status, data = anonymous.post(
        "/api/auth/login", {"email": "carol@example.com", "password": "s3cret-pass"}
    )
    assert status == 200
    assert data["token_type"] == "bearer" and data["expires_in"] == 86400
    status, _ = anonymous.get(
        "/api/schedules", headers={"Authorization": f"Bearer {data['access_token']}"}
    )
    assert status == 200


@pytest.mark.parametrize(
    "email,password", [("carol@example.com", "wrong-pass"), ("nobody@example.com", "s3cret-pass")]
)
def test_login_refuses_wrong_password_and_unknown_email_alike(anonymous, make_user, email, password):
    make_user("carol@example.com", "s3cret-pass")
    status, data = anonymous.post("/api/auth/login", {"email": email, "password": password})
    assert status == 401
    assert data == {"error": "Invalid email or password"}


def test_duplicate_email_is_409(anonymous, make_user):
    make_user("dup@example.com")
    status, data = anonymous.post(
        "/api/auth/register", {"email": "DUP@example.com", "password": "password123"}
    )
    assert status == 409
    assert data["detail"] == {"field": "email"}


# The races call `auth` directly: `chalice.test.Client` swaps `os.environ` for a copy around
# each request, which concurrent requests can leave behind as `os.environ`.


def test_concurrent_registrations_of_one_email_exactly_one_wins(aws):
    results: list[int] = []
    barrier = threading.Barrier(8)

    def register() -> None:
        barrier.wait()
        try:
            auth.register("race@example.com", "password123")
            results.append(200)
        except auth.Conflict as conflict:
            results.append(conflict.status)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] + [409] * 7
    users = [u for u in UserModel.scan() if u.email == "race@example.com"]
    assert len(users) == 1


def test_concurrent_first_registrations_make_exactly_one_admin(aws):
    roles: list[str] = []
    barrier = threading.Barrier(6)

    def register(i: int) -> None:
        barrier.wait()
        user, _token = auth.register(f"first{i}@example.com", "password123")
        roles.append(user.role)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(roles) == ["admin"] + ["user"] * 5


def test_password_is_stored_only_as_a_scrypt_hash(make_user):
    user = make_user("hash@example.com", "plain-password-1")
    item = UserModel.get(user.id)
    assert "plain-password-1" not in json.dumps(item.attribute_values, default=str)
    assert item.password_hash.startswith("scrypt$")
    assert auth.verify_password("plain-password-1", item.password_hash)
    assert not auth.verify_password("plain-password-2", item.password_hash)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "not-an-email", "password": "password123"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"password": "password123"}, "email"),
        ({"email": 5, "password": "password123"}, "email"),
        ({"email": "a@example.com", "password": ["x"] * 9}, "password"),
        ({"email": "a@example.com", "password": "password123", "admin": True}, "admin"),
    ],
)
def test_register_validation_names_the_field(anonymous, body, field):
    status, data = anonymous.post("/api/auth/register", body)
    assert status == 422
    assert data["detail"][0]["field"] == field


# --- the authorizer ------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(user_id: str, now: int) -> dict[str, str]:
    claims = {"sub": user_id, "iat": now, "exp": now + 3600}
    return {
        "other_signature": jwt.encode(claims, "another-secret-of-sufficient-length!", algorithm="HS256"),
        "alg_none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + ".",
        "expired": jwt.encode({**claims, "iat": now - 90000, "exp": now - 1}, SECRET, algorithm="HS256"),
        "no_exp": jwt.encode({"sub": user_id, "iat": now}, SECRET, algorithm="HS256"),
        "no_sub": jwt.encode({"iat": now, "exp": now + 3600}, SECRET, algorithm="HS256"),
        "hs512": jwt.encode(claims, SECRET, algorithm="HS512"),
        "malformed": "not.a.jwt",
        "garbage": "abc",
    }


@pytest.mark.parametrize(
    "case",
    ["other_signature", "alg_none", "expired", "no_exp", "no_sub", "hs512", "malformed", "garbage"],
)
def test_bad_tokens_are_refused_with_401(alice, case, clock):
    token = _bad_tokens(alice.id, int(clock().timestamp()))[case]
    status, data = alice.get("/api/schedules", headers={"Authorization": f"Bearer {token}"})
    assert (status, data) == (401, {"error": "Invalid or expired token"})


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token xyz"])
def test_missing_or_non_bearer_authorization_is_401(anonymous, header):
    headers = {} if header is None else {"Authorization": header}
    status, data = anonymous.get("/api/schedules", headers=headers)
    assert (status, data) == (401, {"error": "Missing bearer token"})


def test_a_token_of_a_user_who_no_longer_exists_is_refused(alice):
    from chalicelib.tables import UserModel

    UserModel(alice.id).delete()
    assert alice.get("/api/schedules") == (401, {"error": "Invalid or expired token"})


def test_a_token_naming_a_claim_item_is_refused(alice, clock):
    now = int(clock().timestamp())
    token = jwt.encode({"sub": "admin#", "iat": now, "exp": now + 60}, SECRET, algorithm="HS256")
    assert alice.get("/api/schedules", headers={"Authorization": f"Bearer {token}"})[0] == 401


def test_token_expires_after_24_hours(clock, alice):
    assert alice.get("/api/schedules")[0] == 200
    clock.advance(hours=23, minutes=59)
    assert alice.get("/api/schedules")[0] == 200
    clock.advance(minutes=2)
    assert alice.get("/api/schedules")[0] == 401


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/schedules"),
        ("POST", "/api/schedules"),
        ("PUT", "/api/schedules/x"),
        ("DELETE", "/api/schedules/x"),
    ],
)
def test_every_protected_route_needs_a_token(anonymous, method, path):
    assert anonymous.call(method, path, {"name": "x"})[0] == 401


def test_secret_comes_from_secrets_manager_when_only_the_arn_is_set(aws, monkeypatch):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name="jwt", SecretString="from-secrets-manager-long-enough-secret"
    )["ARN"]
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("JWT_SECRET_ARN", arn)
    monkeypatch.setattr(auth, "_secret_cache", {})
    token = auth.issue_token(auth.User("u1", "u@example.com", "user"))
    claims = jwt.decode(token, "from-secrets-manager-long-enough-secret", algorithms=["HS256"])
    assert claims["sub"] == "u1"
    assert auth.verify_token(token)["sub"] == "u1"


def test_require_admin_checks_the_stored_role(make_user):
    admin, user = make_user(), make_user()
    auth.require_admin(admin.id)
    with pytest.raises(auth.Forbidden):
        auth.require_admin(user.id)
    with pytest.raises(auth.Forbidden):
        auth.require_admin("no-such-user")



# --- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password,why",
    [
        (" " * 8, "whitespace"),
        ("\t\n \u3000\u00a0   ", "whitespace"),
        ("password\x00123", "control"),
        ("password\n123", "control"),
        ("password\t123", "control"),
        ("password\x7f123", "control"),
        ("password\x85123", "control"),
        ("password\x1b[0m", "control"),
        ("password\ud800123", "unicode"),
        ("short", "at least 8"),
    ],
)
def test_registration_refuses_blank_and_control_character_passwords(anonymous, password, why):
    status, data = anonymous.post("/api/auth/register", {"email": "p@example.com", "password": password})
    assert status == 422, data
    assert data["detail"][0]["field"] == "password"
    assert why in data["detail"][0]["message"]
    assert UserModel.count() == 0


@pytest.mark.parametrize("password", ["correct horse battery", "pässwörd-ünicode", "\U0001f511" * 8, "p" * 1024])
def test_registration_accepts_spaces_inside_and_any_printable_unicode(anonymous, password):
    status, data = anonymous.post("/api/auth/register", {"email": "p@example.com", "password": password})
    assert status == 200, data
    status, _ = anonymous.post("/api/auth/login", {"email": "p@example.com", "password": password})
    assert status == 200


# --- who is admin ----------------------------------------------------------------------------


def test_admin_emails_name_the_admins_not_the_first_registration(make_user, monkeypatch):
    monkeypatch.setenv("ADMIN_EMAILS", " boss@example.com, Deputy@Example.com ,")
    assert make_user("first@example.com").user["role"] == "user"
    assert make_user("BOSS@example.com").user["role"] == "admin"
    assert make_user("deputy@example.com").user["role"] == "admin"
    assert make_user("someone@example.com").user["role"] == "user"
    assert not any(u.user_id == "admin#" for u in UserModel.scan())


def test_a_user_named_in_admin_emails_after_registering_is_admin_from_their_next_login(
    anonymous, make_user, monkeypatch
):
    make_user("first@example.com")  # the first user: admin where ADMIN_EMAILS is unset
    late = make_user("late@example.com", "late-password")
    assert late.user["role"] == "user"
    with pytest.raises(auth.Forbidden):
        auth.require_admin(late.id)

    monkeypatch.setenv("ADMIN_EMAILS", "late@example.com")
    status, data = anonymous.post("/api/auth/login", {"email": "late@example.com", "password": "late-password"})
    assert status == 200
    assert jwt.decode(data["access_token"], SECRET, algorithms=["HS256"])["role"] == "admin"
    auth.require_admin(late.id)


def test_an_empty_admin_emails_keeps_the_first_user_rule(make_user, monkeypatch):
    monkeypatch.setenv("ADMIN_EMAILS", " , ")
    assert make_user().user["role"] == "admin"
    assert make_user().user["role"] == "user"


# --- logout ----------------------------------------------------------------------------------


def test_logout_revokes_every_token_issued_before_it_and_a_new_login_works(anonymous, make_user):
    carol = make_user("carol@example.com", "s3cret-pass")
    _, second = anonymous.post("/api/auth/login", {"email": "carol@example.com", "password": "s3cret-pass"})
    other_session = {"Authorization": f"Bearer {second['access_token']}"}

    assert carol.post("/api/auth/logout") == (200, {"status": "ok", "connections_closed": 0})

    assert carol.get("/api/schedules") == (401, {"error": "Invalid or expired token"})
    assert anonymous.get("/api/schedules", headers=other_session)[0] == 401
    assert carol.post("/api/auth/logout")[0] == 401
    status, fresh = anonymous.post("/api/auth/login", {"email": "carol@example.com", "password": "s3cret-pass"})
    assert status == 200
    assert anonymous.get("/api/schedules", headers={"Authorization": f"Bearer {fresh['access_token']}"})[0] == 200


def test_a_token_without_a_version_works_until_the_first_logout(alice, clock):
    """Tokens issued before versions existed carry no `ver`: they count as version 0."""
    now = int(clock().timestamp())
    legacy = {"Authorization": "Bearer " + jwt.encode({"sub": alice.id, "iat": now, "exp": now + 60}, SECRET, algorithm="HS256")}
    assert alice.get("/api/schedules", headers=legacy)[0] == 200
    alice.post("/api/auth/logout")
    assert alice.get("/api/schedules", headers=legacy)[0] == 401


@pytest.mark.parametrize("version", ["0", 0.0, None, True, 1])
def test_a_token_whose_version_is_not_the_users_is_refused(alice, clock, version):
    now = int(clock().timestamp())
    token = jwt.encode({"sub": alice.id, "iat": now, "exp": now + 60, "ver": version}, SECRET, algorithm="HS256")
    assert alice.get("/api/schedules", headers={"Authorization": f"Bearer {token}"})[0] == 401
