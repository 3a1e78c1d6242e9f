"""Benchmark Scheduler: the Chalice app. Wiring only — parse, call chalicelib, shape.

Every Lambda of the app imports this module, so it imports only what the REST API needs;
the runner's HTTP clients load in the runner.
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable

from chalice import Chalice, Rate, Response
from chalice.app import Request

from chalicelib import (
    auth,
    dispatch,
    history,
    jobs,
    keys,
    logs,
    notify,
    payloads,
    schedules,
    ui_assets,
    user_providers,
    websocket,
)
from chalicelib.errors import ApiError

app = Chalice(app_name="benchmark-scheduler")
logs.configure()
# Chalice 1.34 still marks WebSocket handlers experimental: without this opt-in, loading the
# app (`chalice package`, `chalice local`, the dev stack) fails with ExperimentalFeatureError.
app.experimental_feature_flags.update(["WEBSOCKETS"])
# Job events reach the user's browser tabs through API Gateway's `@connections` API.
notify.use(websocket.notifier)

# Bodies are parsed by `payloads`, whatever the client says the type is: a curl without
# `-H content-type` still gets a JSON answer, and bad JSON gets the app's error envelope.
_ANY_CONTENT = ["*/*"]


# --- plumbing: auth and the error envelope -------------------------------------------------


def route(path: str, *, public: bool = False, **options: Any) -> Callable:
    """`app.route` that authenticates the caller (unless `public`) and answers `ApiError`
    as `{error, detail}`.

    The JWT is verified here, in the route's own Lambda, not by an API Gateway authorizer:
    a refused token is then the same 401 `{error}` under API Gateway, `chalice local` and
    `chalice.test.Client` (an authorizer's refusal is a 500 in the last two), and no
    separate authorizer function pays a cold start."""

    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                if not public:
                    _caller.set(auth.authenticate(request().headers.get("authorization")))
                return view(*args, **kwargs)
            except ApiError as err:
                return Response(body=err.body(), status_code=err.status, headers=err.headers)

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


_caller: ContextVar[auth.User] = ContextVar("caller")


def user_id() -> str:
    """The authenticated caller of the current request (set by `route`)."""
    return _caller.get().id


def request() -> Request:
    """The request being answered (Chalice sets it before calling a view)."""
    current = app.current_request
    assert current is not None, "called outside a request"
    return current


def body() -> bytes:
    raw = request().raw_body
    return raw.encode() if isinstance(raw, str) else raw


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


@route("/api/schedules/{schedule_id}/trigger", methods=["POST"])
def trigger_schedule(schedule_id):
    job_id = dispatch.trigger(user_id(), schedule_id)
    return ok(message="Benchmark triggered", job_id=job_id)


# --- keys and providers ----------------------------------------------------------------------


@route("/api/keys", methods=["GET"])
def list_keys():
    return {"keys": keys.list_keys(user_id())}


@route("/api/keys", methods=["PUT"])
def put_key():
    data = payloads.parse(keys.KeyPut, body())
    return ok(key=keys.put_key(user_id(), data.provider_key, data.value))


@route("/api/keys/{provider_key}", methods=["DELETE"])
def delete_key(provider_key):
    keys.delete_key(user_id(), provider_key)
    return ok()


@route("/api/providers", methods=["GET"])
def list_providers():
    return {"providers": user_providers.list_providers(user_id())}


@route("/api/providers/{provider_key}", methods=["PUT"])
def put_provider(provider_key):
    data = payloads.parse(user_providers.ProviderBody, body())
    return ok(provider=user_providers.put_provider(user_id(), provider_key, data))


@route("/api/providers/{provider_key}", methods=["DELETE"])
def delete_provider(provider_key):
    user_providers.delete_provider(user_id(), provider_key)
    return ok()


# --- jobs ------------------------------------------------------------------------------------


@route("/api/jobs", methods=["GET"])
def list_jobs():
    query = payloads.query(jobs.JobsQuery, request().query_params)
    return {"jobs": [jobs.to_public(job) for job in jobs.list_jobs(user_id(), query)]}


@route("/api/jobs/{job_id}", methods=["GET"])
def get_job(job_id):
    return jobs.to_public(jobs.get_job(job_id, user_id()))


@route("/api/jobs/{job_id}/cancel", methods=["POST"])
def cancel_job(job_id):
    jobs.cancel(job_id, user_id())
    return ok()


@route("/api/admin/users/{target_user_id}/limits", methods=["PUT"])
def set_user_limits(target_user_id):
    auth.require_admin(user_id())
    data = payloads.parse(jobs.LimitsUpdate, body())
    return ok(**jobs.set_limit(target_user_id, data.max_concurrent))


# --- history ---------------------------------------------------------------------------------


@route("/api/history", methods=["GET"])
def list_history():
    query = payloads.query(history.HistoryQuery, request().query_params)
    return history.list_runs(user_id(), query)


@route("/api/history/{run_id}", methods=["GET"])
def get_history_run(run_id):
    return history.get(user_id(), run_id)


@route("/api/history/{run_id}", methods=["DELETE"])
def delete_history_run(run_id):
    history.delete(user_id(), run_id)
    return ok()


# --- tick and runner -------------------------------------------------------------------------


@app.schedule(Rate(1, unit=Rate.MINUTES), name="tick")
def tick(event):
    from chalicelib import tick as scheduler

    # The Lambda's remaining time bounds the tick's work (None where there is no context).
    remaining_ms = getattr(event.context, "get_remaining_time_in_millis", None)
    return scheduler.run(remaining_ms=remaining_ms).summary()


@app.lambda_function(name="runner")
def runner(event, context):
    from chalicelib import runner as benchmark  # httpx and the provider clients load here only

    return benchmark.handle(event, context.get_remaining_time_in_millis)


# --- websocket -------------------------------------------------------------------------------

@app.on_ws_connect()
def ws_connect(event):
    """A non-2xx answer makes API Gateway refuse the upgrade (401 bad token, 429 limit)."""
    try:
        websocket.connect(event.to_dict())
    except ApiError as err:
        return Response(body=err.body(), status_code=err.status)
    return {"statusCode": 200}


@app.on_ws_message()
def ws_message(event):
    websocket.receive(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event):
    websocket.disconnect(event.to_dict())


# --- ui --------------------------------------------------------------------------------------


def _page(served: tuple[str, dict[str, str]]) -> Response:
    text, headers = served
    response_headers: dict[str, str | list[str]] = {**headers}
    return Response(body=text, status_code=200, headers=response_headers)


@route("/", methods=["GET"], public=True)
def ui_index():
    return _page(ui_assets.index())


@route("/ui/{name}", methods=["GET"], public=True)
def ui_asset(name):
    return _page(ui_assets.serve(name, request().headers))
