"""Benchmark Scheduler: the Chalice app. Wiring only — parse, call chalicelib, shape.

Every Lambda of the app imports this module, so it imports only what the REST API needs;
the runner's HTTP clients load in the runner.
"""
from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable

from chalice import AuthResponse, Chalice, Response

from chalicelib import auth, payloads, schedules
from chalicelib.errors import ApiError

app = Chalice(app_name="benchmark-scheduler")
app.log.setLevel(logging.INFO)

# Bodies are parsed by `payloads`, whatever the client says the type is: a curl without
# `-H content-type` still gets a JSON answer, and bad JSON gets the app's error envelope.
_ANY_CONTENT = ["*/*"]


# --- plumbing: auth and the error envelope -------------------------------------------------


@app.authorizer()
def jwt_auth(auth_request):
    """API Gateway TOKEN authorizer. Raising "Unauthorized" is API Gateway's contract for 401."""
    try:
        claims = auth.verify_token(auth.bearer_token(auth_request.token))
    except ApiError:
        raise Exception("Unauthorized")  # noqa: TRY002 - the exact text API Gateway expects
    return AuthResponse(routes=["*"], principal_id=claims["sub"])


def route(path: str, *, public: bool = False, **options: Any) -> Callable:
    """`app.route` with the JWT authorizer and `ApiError` → `{error, detail}` answers."""

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except ApiError as err:
                return Response(body=err.body(), status_code=err.status)

        if not public:
            options["authorizer"] = jwt_auth
        options.setdefault("content_types", _ANY_CONTENT)
        return app.route(path, **options)(guarded)

    return register


@app.middleware("http")
def error_envelope(event, get_response):
    """Chalice's own errors (405, 415, unhandled 500) in the app's `{error}` envelope."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        response.body = {"error": body.get("Message", "Error"), "detail": {"code": body["Code"]}}
    return response


def user_id() -> str:
    return app.current_request.context["authorizer"]["principalId"]


def body() -> bytes | None:
    return app.current_request.raw_body


def ok(**fields: Any) -> dict[str, Any]:
    return {"status": "ok", **fields}


# --- auth ------------------------------------------------------------------------------------


@route("/api/auth/register", methods=["POST"], public=True)
def register():
    data = payloads.parse(auth.Registration, body())
    user, token = auth.register(data.email, data.password)
    return {"user": user.public(), "access_token": token, "token_type": "bearer"}


@route("/api/auth/login", methods=["POST"], public=True)
def login():
    data = payloads.parse(auth.Credentials, body())
    token = auth.login(data.email, data.password)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": int(auth.TOKEN_TTL.total_seconds()),
    }


# --- schedules -------------------------------------------------------------------------------


@route("/api/schedules", methods=["GET"])
def list_schedules():
    return {"schedules": schedules.list_for(user_id())}


@route("/api/schedules", methods=["POST"])
def create_schedule():
    schedule = schedules.create(user_id(), payloads.parse(schedules.ScheduleCreate, body()))
    return ok(id=schedule["id"], schedule=schedule)


@route("/api/schedules/{schedule_id}", methods=["PUT"])
def update_schedule(schedule_id):
    changes = payloads.parse(schedules.ScheduleUpdate, body())
    return ok(schedule=schedules.update(user_id(), schedule_id, changes))


@route("/api/schedules/{schedule_id}", methods=["DELETE"])
def delete_schedule(schedule_id):
    schedules.delete(user_id(), schedule_id)
    return ok()


# --- keys and providers ----------------------------------------------------------------------


# --- jobs ------------------------------------------------------------------------------------


# --- history ---------------------------------------------------------------------------------


# --- tick and runner -------------------------------------------------------------------------


# --- websocket -------------------------------------------------------------------------------


# --- ui --------------------------------------------------------------------------------------
