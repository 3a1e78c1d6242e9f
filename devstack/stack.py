"""The local stack: the AWS endpoints the app talks to, served on loopback, plus the app.

One code path (DESIGN §1): the app reads the same standard AWS environment it reads on
Lambda (`AWS_ENDPOINT_URL`, region, credentials, table names); here those point at moto's
server mode, in this process. Nothing in `chalicelib` knows it is local.

What runs, all in this one process and all on 127.0.0.1 unless `--allow-remote`: moto
(DynamoDB, KMS, Secrets Manager) on a free port; the REST API (Chalice's local server) on
8501; the WebSocket gateway and its `@connections` API on 8502 (devstack/ws_gateway.py);
the Lambda `Invoke` API for the runner (devstack/lambda_endpoint.py); the one-minute tick
(devstack/tick_loop.py); the `demo` provider (devstack/fake_providers.py); a webhook sink
(devstack/webhook_sink.py). The AWS endpoints accept only requests signed with the stack's
own credentials and answer no CORS (devstack/sigv4.py). Every acknowledged change is
journaled before its answer leaves, and replayed at the next start (devstack/state.py).
"""
from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import logging
import os
import shlex
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devstack import state
from devstack.http_server import POLL_S

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")

REGION = "us-east-1"
# Endpoint, profile or credential settings from the developer's shell would send some calls
# to a real account, or sign them with a key the stack refuses; the stack sets its own.
_FOREIGN = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Tables whose items die with the stack: WebSocket connections (their sockets are gone; kept
# records would only count against their users' five-connection limit).
EPHEMERAL_TABLES = ("connections",)

DEFAULT_STATE_DIR = ROOT / ".devstack"
LAMBDA_CONCURRENCY = 8
DRAIN_SECONDS = 5.0  # how long Ctrl-C waits for running runners before the last compaction


class StartError(Exception):
    """A part of the stack did not start; the message says which."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    rest_port: int = 8501
    ws_port: int = 8502
    aws_port: int = 0  # 0: a free port
    lambda_port: int = 0  # 0: a free port
    demo_port: int = 0  # 0: a free port
    webhook_port: int = 0  # 0: a free port
    tick_seconds: float = 60.0
    state_dir: Path | None = DEFAULT_STATE_DIR  # None: nothing kept, fresh credentials


@dataclass
class Stack:
    config: StackConfig
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _recovery: state.Recovery | None = None
    _durable: state.Durable | None = None
    _credentials: Any = None  # sigv4.Credentials
    _jwt_secret: tuple[str, str] | None = None  # (name, value)
    _vault_created: bool = False  # a new KMS key or secret: not in the snapshot yet
    _lambda: Any = None  # the LambdaEndpoint

    def start(self) -> None:
        self._set_environment()
        steps = [
            ("the saved state", self._read_state),
            ("moto (DynamoDB, KMS, Secrets Manager)", self._start_aws),
            ("tables from the saved state", self._restore_tables),
            ("KMS key and JWT secret", self._start_vault),
            ("journal", self._start_journal),
            ("demo provider", self._start_demo),
            ("webhook sink", self._start_webhooks),
            ("Lambda Invoke API", self._start_lambda),
            (f"REST API on port {self.config.rest_port}", self._start_rest),
            (f"WebSocket gateway on port {self.config.ws_port}", self._start_ws),
            ("tick", self._start_tick),
        ]
        for what, step in steps:
            try:
                step()
            except (StartError, state.StateError):
                raise
            except Exception as err:
                raise StartError(f"{what}: {err}") from err
        # What the start built lives as long as the stack (modules, the kept state, moto's
        # items): later garbage collections need not walk it again and again.
        gc.freeze()

    def stop(self) -> None:
        while self._stops:
            try:
                self._stops.pop()()
            except Exception as err:  # keep stopping the rest
                print(f"devstack: error while stopping: {err}", file=sys.stderr)

    def _set_environment(self) -> None:
        """Every call must reach this stack, and only this stack: drop the shell's AWS
        endpoints, profile and keys; name the region, the tables' stage and what the app
        reads from the stack (WS_URL, private endpoints allowed: the demo provider and the
        webhook sink are on loopback)."""
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name in _FOREIGN:
                del os.environ[name]
        os.environ.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            STAGE="local",  # names the tables (the REST server loads Chalice's `local` stage)
            ALLOW_PRIVATE_ENDPOINTS="true",
            WS_URL=f"ws://{self.config.host}:{self.config.ws_port}/api",
        )

    def _read_state(self) -> None:
        """Credentials, snapshot and journal first: a file that cannot be used stops the
        start before anything runs."""
        from devstack import sigv4

        directory = self.config.state_dir
        self._credentials = sigv4.load_or_create(directory)
        os.environ["AWS_ACCESS_KEY_ID"] = self._credentials.access_key
        os.environ["AWS_SECRET_ACCESS_KEY"] = self._credentials.secret_key
        self._recovery = state.recover(directory) if directory is not None else state.Recovery(state.State())

    def _start_aws(self) -> None:
        from devstack import moto_serial
        from devstack.sigv4 import signed_only

        moto_serial.serialize_dynamodb()
        port = self.config.aws_port or free_port(self.config.host)
        server = moto_serial.serve(self.config.host, port, signed_only(self._credentials))
        thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), name="moto", daemon=True)
        thread.start()
        self._stops.append(server.shutdown)
        os.environ["AWS_ENDPOINT_URL"] = f"http://{self.config.host}:{server.server_port}"

        from chalicelib import tables

        tables.create_tables()

    def _restore_tables(self) -> None:
        from chalicelib import config

        recovery = self._recovery
        assert recovery is not None
        ephemeral = {config.table_name(name) for name in EPHEMERAL_TABLES}
        if recovery.legacy is not None:
            count = state.adopt_legacy(recovery.state, recovery.legacy, config.table_name, _key_names)
            log.info("read %d items from an older stack's state.json", count)
        count = state.load_into_moto(recovery.state, REGION, ephemeral)
        if count or recovery.frames:
            log.info("restored %d items (%d journal records replayed)", count, recovery.frames)

    def _start_vault(self) -> None:
        """The key vault's KMS key and the JWT secret, restored when kept."""
        kept = self._recovery.state if self._recovery else state.State()
        self._vault_created = kept.kms is None or kept.jwt_secret is None
        kept.kms = state.ensure_kms_key(kept.kms)
        os.environ["KMS_KEY_ID"] = kept.kms["key_id"]
        arn, kept.jwt_secret = state.ensure_jwt_secret(kept.jwt_secret, os.environ["STAGE"])
        self._jwt_secret = (arn, kept.jwt_secret)
        os.environ["JWT_SECRET_ARN"] = arn
        if os.environ.get("JWT_SECRET"):
            print("devstack: JWT_SECRET is set in your shell: tokens are signed with it, "
                  "not with the stack's Secrets Manager secret", file=sys.stderr)

    def _start_journal(self) -> None:
        """Compact what was recovered into a new snapshot, then journal every change from
        here on. The last compaction runs at stop, after every writer has stopped; the
        journal stays attached, so a straggling runner's write is still durable."""
        from devstack import moto_serial

        directory = self.config.state_dir
        if directory is None or self._recovery is None:
            return
        kept = self._recovery.state
        state.refresh_tables(kept, REGION)
        current = self._recovery.snapshot_is_current and not self._vault_created
        self._durable = state.Durable(directory, kept, compact=not current)
        state.retire_legacy(directory)
        assert self._jwt_secret is not None
        moto_serial.journal_to(self._durable, secret=self._jwt_secret)
        durable_state = self._durable

        def compact() -> None:
            with moto_serial.exclusive():
                durable_state.compact()
            log.info("saved %d items to %s", durable_state.state.item_count(), directory)

        self._stops.append(compact)

    def _start_ws(self) -> None:
        """API Gateway's WebSocket + `@connections` APIs (devstack/ws_gateway.py)."""
        from devstack.ws_gateway import start_gateway

        self._stops.append(start_gateway(self.config.host, self.config.ws_port, credentials=self._credentials))

    def _start_rest(self) -> None:
        """Chalice's local server on the app, with the `local` stage's configuration. Built
        from `chalice.config` directly: `chalice.cli` (what `chalice local` runs) imports
        its interactive prompts, half a second of every start."""
        from chalice.config import Config
        from chalice.local import create_local_server

        import app as app_module

        config = Config(
            chalice_stage="local",
            user_provided_params={"chalice_app": app_module.app, "project_dir": str(ROOT)},
            config_from_disk=json.loads((ROOT / ".chalice" / "config.json").read_text()),
            default_params={"api_gateway_stage": "api", "autogen_policy": True},
        )
        os.environ.update(config.environment_variables)
        server = create_local_server(app_module.app, config, self.config.host, self.config.rest_port)
        thread = threading.Thread(target=server.server.serve_forever, args=(POLL_S,), daemon=True)
        thread.start()
        self._stops.append(server.shutdown)

    def _start_demo(self) -> None:
        """The `demo` provider (OpenAI-compatible, models fast and slow): the catalog lists
        it when DEMO_PROVIDER_URL names its base URL."""
        from devstack.fake_providers import demo_server

        server = demo_server(self.config.host, self.config.demo_port).start()
        self._stops.append(server.stop)
        os.environ["DEMO_PROVIDER_URL"] = server.base_url_for("demo")

    def _start_webhooks(self) -> None:
        from devstack.webhook_sink import WebhookSink

        sink = WebhookSink(self.config.host, self.config.webhook_port).start()
        self._stops.append(sink.stop)
        os.environ["DEVSTACK_WEBHOOK_URL"] = sink.url

    def _start_lambda(self) -> None:
        """Lambda's Invoke API for the app's functions; the app's boto3 client reaches it
        through AWS_ENDPOINT_URL_LAMBDA."""
        import app as app_module

        from devstack.lambda_endpoint import LambdaEndpoint, app_functions

        functions = app_functions(app_module, os.environ["STAGE"])
        endpoint = LambdaEndpoint(
            functions,
            self.config.host,
            self.config.lambda_port,
            credentials=self._credentials,
            region=REGION,
            concurrency=LAMBDA_CONCURRENCY,
        ).start()
        self._lambda = endpoint
        self._stops.append(lambda: endpoint.stop(DRAIN_SECONDS))
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = endpoint.url
        os.environ["RUNNER_FUNCTION_NAME"] = self.function_name("runner")

    def function_name(self, name: str) -> str:
        """A function's deployed name: `<app_name>-<stage>-<name>`, as Chalice names it."""
        import app as app_module

        return f"{app_module.app.app_name}-{os.environ['STAGE']}-{name}"

    def _start_tick(self) -> None:
        """EventBridge's rate rule: the app's `tick` function every `tick_seconds`."""
        from devstack.lambda_endpoint import ACCOUNT_ID
        from devstack.tick_loop import TickLoop

        endpoint = self._lambda
        tick = endpoint.resolve(self.function_name("tick"), None)
        if tick is None:
            raise RuntimeError("the app has no function named tick")
        loop = TickLoop(
            lambda event: endpoint.call(tick, event),
            self.config.tick_seconds,
            region=REGION,
            account=ACCOUNT_ID,
            rule_arn=f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{tick.name}",
        ).start()
        self._stops.append(loop.stop)

    def exports(self) -> dict[str, str]:
        """The environment `chalice local --stage local` needs to use this running stack."""
        names = (
            "STAGE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_LAMBDA", "KMS_KEY_ID", "JWT_SECRET_ARN", "DEMO_PROVIDER_URL",
            "RUNNER_FUNCTION_NAME", "ALLOW_PRIVATE_ENDPOINTS", "WS_URL", "DEVSTACK_WEBHOOK_URL",
        )
        return {name: os.environ[name] for name in names if os.environ.get(name)}


def _key_names(table_name: str) -> list[str]:
    """A table's key attribute names, as moto holds the table."""
    from devstack import moto_serial

    definition, _ = moto_serial.tables(REGION)[table_name]
    return state.key_names(definition)


def quick_start(config: StackConfig, stack: Stack | None = None) -> str:
    """The console banner: where everything is, and a session to paste into a shell."""
    api = f"http://{config.host}:{config.rest_port}"
    ws = f"ws://{config.host}:{config.ws_port}/api"
    env = stack.exports() if stack is not None else {}
    auth = '-H "Authorization: Bearer $TOKEN"'
    token = "python3 -c 'import sys, json; print(json.load(sys.stdin)[\"access_token\"])'"
    body = json.dumps({
        "name": "Demo speed check",
        "models": ["demo/fast", "demo/slow"],
        "prompt": "Explain quantum computing in one paragraph.",
        "max_tokens": 512,
        "temperature": 0.7,
        "interval_hours": 1,
    })
    benchmark = json.dumps({"models": ["demo/fast", "demo/slow"], "prompt": "Count to twenty.", "runs": 3, "warmup": True})
    hook = env.get("DEVSTACK_WEBHOOK_URL", "<the webhooks URL above>")
    hook_events = hook.rsplit("/", 1)[0] + "/events"
    where = [
        ("REST API", api),
        ("WebSocket", f"{ws}?token=$TOKEN"),
    ]
    if env:
        where += [
            ("AWS (moto)", f"{env['AWS_ENDPOINT_URL']}  DynamoDB, KMS, Secrets Manager (signed requests only)"),
            ("Lambda", f"{env['AWS_ENDPOINT_URL_LAMBDA']}  Invoke {env['RUNNER_FUNCTION_NAME']}"),
            ("demo", f"{env['DEMO_PROVIDER_URL']}  models demo/fast, demo/slow (no key)"),
            ("webhooks", f"{env['DEVSTACK_WEBHOOK_URL']}  (received: GET {env['DEVSTACK_WEBHOOK_URL'].rsplit('/', 1)[0]}/events)"),
        ]
    where.append(("tick", f"every {config.tick_seconds:g} s (TICK_SECONDS)"))
    if config.state_dir is not None:
        where.append(("state", f"{config.state_dir} (every acknowledged write is on disk first; "
                               "credentials.json holds the AWS keys)"))
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"""
Benchmark Scheduler local stack is up
{chr(10).join(f"  {name:<11}{value}" for name, value in where)}

Quick start (copy-paste into a shell):
  API={api}
  TOKEN=$(curl -s $API/api/auth/register -d '{{"email": "me@example.com", "password": "correct-horse"}}' | {token})
  # registered in an earlier run (the state is kept)? log in instead:
  #   TOKEN=$(curl -s $API/api/auth/login -d '{{"email": "me@example.com", "password": "correct-horse"}}' | {token})
  curl -s $API/api/providers {auth}        # lists the demo provider
  SID=$(curl -s $API/api/schedules {auth} \\
    -d '{body}' \\
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
  # watch the events in a second shell (echo $TOKEN in this one, paste it there):
  #   {_tool("python")} -m websockets "{ws}?token=$TOKEN"
  curl -s -X POST $API/api/schedules/$SID/trigger {auth}
  curl -s $API/api/history {auth} | python3 -m json.tool
  # a one-off benchmark: each model 3 times after an unmeasured warm-up, then its summary
  curl -s $API/api/benchmarks {auth} -d '{benchmark}'
  sleep 10; curl -s "$API/api/history?source=manual&limit=1" {auth} | python3 -m json.tool
  # how fast was each model over the last 7 days (p50/p90 per hour), and all results as CSV
  curl -s "$API/api/stats?bucket=hour" {auth} | python3 -m json.tool
  curl -s "$API/api/history/export?format=csv" {auth}
  # an alert when demo/slow answers slowly, delivered to the local webhook sink
  curl -s $API/api/alerts {auth} -d '{{"name": "slow demo", "schedule_id": "'$SID'", "model": "demo/slow", "webhook_url": "{hook}", "condition": {{"kind": "threshold", "metric": "ttft_ms", "op": "above", "value": 300}}}}'
  curl -s -X POST $API/api/schedules/$SID/trigger {auth}; sleep 10; curl -s {hook_events}
  curl -s -X PUT $API/api/schedules/$SID {auth} -d '{{"enabled": false}}'
  curl -s -X DELETE $API/api/schedules/$SID {auth}

Only the REST API, with `chalice local`, against this running stack (another shell):
  cd {ROOT} && export {exports}
  {_tool("chalice")} local --stage local --port 8000

Ctrl-C stops everything (a kill -9 loses nothing acknowledged either).
"""


def _tool(name: str) -> str:
    """The venv's command, as a path relative to the project when it lives there."""
    path = Path(sys.executable).parent / name
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def parse_args(argv: list[str] | None) -> StackConfig:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="the address every server binds (loopback only "
                        "unless --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host other machines can reach (the REST API has no TLS)")
    parser.add_argument("--rest-port", type=int, default=_env_int("REST_PORT", 8501), help="env REST_PORT")
    parser.add_argument("--ws-port", type=int, default=_env_int("WS_PORT", 8502), help="env WS_PORT")
    parser.add_argument("--aws-port", type=int, default=_env_int("DEVSTACK_AWS_PORT", 0),
                        help="moto's port (env DEVSTACK_AWS_PORT; 0: a free one)")
    parser.add_argument("--lambda-port", type=int, default=_env_int("DEVSTACK_LAMBDA_PORT", 0),
                        help="the Lambda Invoke API's port (env DEVSTACK_LAMBDA_PORT; 0: a free one)")
    parser.add_argument("--demo-port", type=int, default=_env_int("DEVSTACK_DEMO_PORT", 0),
                        help="the demo provider's port (env DEVSTACK_DEMO_PORT; 0: a free one)")
    parser.add_argument("--webhook-port", type=int, default=_env_int("DEVSTACK_WEBHOOK_PORT", 0),
                        help="the webhook sink's port (env DEVSTACK_WEBHOOK_PORT; 0: a free one)")
    parser.add_argument("--tick-seconds", type=float, default=_env_float("TICK_SECONDS", 60.0),
                        help="period of the tick (env TICK_SECONDS, default 60)")
    parser.add_argument("--state-dir", default=os.environ.get("DEVSTACK_STATE_DIR") or str(DEFAULT_STATE_DIR),
                        help="snapshot, journal and credentials (env DEVSTACK_STATE_DIR; "
                        f"default {DEFAULT_STATE_DIR.relative_to(ROOT)})")
    parser.add_argument("--no-state", action="store_true",
                        help="keep nothing: start empty, with credentials for this run only")
    args = parser.parse_args(argv)
    if args.tick_seconds <= 0:
        parser.error("--tick-seconds must be positive")
    if not is_loopback(args.host) and not args.allow_remote:
        parser.error(f"--host {args.host} is not a loopback address: other machines could reach "
                     "the stack; add --allow-remote if that is what you want")
    return StackConfig(
        host=args.host,
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        aws_port=args.aws_port,
        lambda_port=args.lambda_port,
        demo_port=args.demo_port,
        webhook_port=args.webhook_port,
        tick_seconds=args.tick_seconds,
        state_dir=None if args.no_state else Path(args.state_dir).expanduser().resolve(),
    )


def main(argv: list[str] | None = None) -> None:
    """Start, print the banner, wait for SIGINT/SIGTERM, stop (compacting the state), exit 0.
    A start that fails (a port in use, an unusable state file) exits 1 with one line."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("devstack").setLevel(logging.INFO)
    if not is_loopback(config.host):
        print(f"devstack: WARNING: serving on {config.host}: other machines can reach the REST API, "
              "the WebSocket and the AWS endpoints (signed requests only), without TLS", file=sys.stderr)
    stack = Stack(config)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        stack.start()
    except (StartError, state.StateError) as err:
        print(f"devstack: cannot start: {err}", file=sys.stderr, flush=True)
        stack.stop()
        _exit(1)
    print(quick_start(config, stack), flush=True)
    try:
        stopped.wait()
    finally:
        print("devstack: stopping", flush=True)
        stack.stop()
        print("devstack: stopped", flush=True)
    _exit(0)


def _exit(code: int) -> None:
    """Exit at once, once everything is stopped and the state compacted.

    `os._exit`, not `sys.exit`: the interpreter's own teardown of moto's module graph adds
    about two seconds to every Ctrl-C, and a runner thread left mid-stream (thread pools are
    joined at exit) could hold the process for minutes. Like a Lambda host going away, such
    a job's lease lapses and the next stack's tick marks it interrupted.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
