"""The local stack: the AWS endpoints the app talks to, served on loopback, plus the app.

One code path (DESIGN §1): the app reads the same standard AWS environment it reads on
Lambda (`AWS_ENDPOINT_URL`, region, credentials, table names); here those point at moto's
server mode, in this process. Nothing in `chalicelib` knows it is local.

What runs, all in this one process: moto (DynamoDB, KMS, Secrets Manager) on a free
loopback port; the REST API (Chalice's local server) on 8501; the WebSocket gateway and
its `@connections` API on 8502 (devstack/ws_gateway.py); the Lambda `Invoke` API for the
runner (devstack/lambda_endpoint.py); the one-minute tick (devstack/tick_loop.py); the
`demo` provider (devstack/fake_providers.py). The tables, the KMS key and the JWT secret
are saved on exit and restored at start (devstack/state.py).
"""
from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")

# Embedded defaults: `make run` needs no configuration and no AWS account.
DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "devstack",
    "AWS_SECRET_ACCESS_KEY": "devstack",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "local",
}
# No JWT_SECRET: the stack keeps the signing key in Secrets Manager and sets
# JWT_SECRET_ARN, the deployed code path (an exported JWT_SECRET still wins, as on Lambda).

# Endpoint or profile settings from the developer's shell would send some calls to a real
# account or fail on a missing profile; the stack sets its own endpoints.
_FOREIGN = ("AWS_PROFILE", "AWS_SESSION_TOKEN")

DEFAULT_STATE = ROOT / ".devstack" / "state.json"
LAMBDA_CONCURRENCY = 8
DRAIN_SECONDS = 5.0  # how long Ctrl-C waits for running runners before saving


class StartError(Exception):
    """A part of the stack did not start; the message says which."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    rest_port: int = 8501
    ws_port: int = 8502
    aws_port: int = 0  # 0: a free port
    lambda_port: int = 0  # 0: a free port
    demo_port: int = 0  # 0: a free port
    tick_seconds: float = 60.0
    state_path: Path | None = DEFAULT_STATE  # None: nothing saved or loaded


@dataclass
class Stack:
    config: StackConfig
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _saved: state.State | None = None
    _kms: dict[str, str] | None = None
    _jwt_secret: str | None = None
    _lambda: Any = None  # the LambdaEndpoint

    def start(self) -> None:
        self._clear_foreign_environment()
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        self._saved = self._read_state()
        steps = [
            ("moto (DynamoDB, KMS, Secrets Manager)", self._start_aws),
            ("KMS key and JWT secret", self._start_vault),
            ("tables from the state file", self._restore_tables),
            ("demo provider", self._start_demo),
            ("Lambda Invoke API", self._start_lambda),
            (f"REST API on port {self.config.rest_port}", self._start_rest),
            (f"WebSocket gateway on port {self.config.ws_port}", self._start_ws),
            ("tick", self._start_tick),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as err:
                raise StartError(f"{what}: {err}") from err

    def stop(self) -> None:
        while self._stops:
            try:
                self._stops.pop()()
            except Exception as err:  # keep stopping the rest
                print(f"devstack: error while stopping: {err}", file=sys.stderr)

    def _start_aws(self) -> None:
        from moto.server import ThreadedMotoServer

        from devstack.moto_serial import serialize_dynamodb

        serialize_dynamodb()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        port = self.config.aws_port or free_port(self.config.host)
        server = ThreadedMotoServer(ip_address=self.config.host, port=port, verbose=False)
        server.start()
        self._stops.append(server.stop)
        os.environ["AWS_ENDPOINT_URL"] = f"http://{self.config.host}:{port}"

        from chalicelib import tables

        tables.create_tables()

    def _start_ws(self) -> None:
        """API Gateway's WebSocket + `@connections` APIs (devstack/ws_gateway.py)."""
        from devstack.ws_gateway import start_gateway

        self._stops.append(start_gateway(self.config.host, self.config.ws_port))

    def _start_rest(self) -> None:
        from chalice.cli.factory import CLIFactory
        from chalice.local import create_local_server

        config = CLIFactory(project_dir=str(ROOT)).create_config_obj(chalice_stage_name="local")
        server = create_local_server(
            config.chalice_app, config, self.config.host, self.config.rest_port
        )
        thread = threading.Thread(target=server.server.serve_forever, daemon=True)
        thread.start()
        self._stops.append(server.shutdown)

    # --- state, vault, Lambda, tick, demo provider (issue 7) ---------------------------

    def _clear_foreign_environment(self) -> None:
        """Drop the shell's AWS endpoint overrides and profile: every call must reach this
        stack, and only this stack."""
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name in _FOREIGN:
                del os.environ[name]
        # The REST server loads Chalice's `local` stage, which sets STAGE=local; a STAGE
        # from the shell would name other tables for the parts started before it.
        os.environ["STAGE"] = "local"

    def _read_state(self) -> state.State | None:
        """Read the saved state first: a file that cannot be used stops the start before
        anything runs (and before a stop could overwrite it with an empty state)."""
        path = self.config.state_path
        return state.read(path) if path is not None else None

    def _start_vault(self) -> None:
        """The key vault's KMS key and the JWT secret, restored from the state when saved."""
        saved = self._saved or state.State()
        self._kms = state.ensure_kms_key(saved.kms)
        os.environ["KMS_KEY_ID"] = self._kms["key_id"]
        arn, self._jwt_secret = state.ensure_jwt_secret(saved.jwt_secret, os.environ["STAGE"])
        os.environ["JWT_SECRET_ARN"] = arn
        if os.environ.get("JWT_SECRET"):
            print("devstack: JWT_SECRET is set in your shell: tokens are signed with it, "
                  "not with the stack's Secrets Manager secret", file=sys.stderr)

    def _restore_tables(self) -> None:
        """Load the saved items, then (only then) arrange for the state to be saved on stop,
        after every writer (Lambda workers, gateway, REST) has stopped."""
        if self._saved is not None:
            count = state.load_tables(self._saved.tables)
            log.info("restored %d items from %s", count, self.config.state_path)
        if self.config.state_path is not None:
            self._stops.append(self.save_state)

    def save_state(self) -> None:
        path = self.config.state_path
        if path is None:
            return
        saved = state.State(tables=state.dump_tables(), kms=self._kms, jwt_secret=self._jwt_secret)
        state.write(path, saved)
        log.info("saved %d items to %s", saved.item_count(), path)

    def _start_demo(self) -> None:
        """The `demo` provider (OpenAI-compatible, models fast and slow): the catalog lists
        it when DEMO_PROVIDER_URL names its base URL."""
        from devstack.fake_providers import demo_server

        server = demo_server(self.config.host, self.config.demo_port).start()
        self._stops.append(server.stop)
        os.environ["DEMO_PROVIDER_URL"] = server.base_url_for("demo")

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
            region=os.environ["AWS_DEFAULT_REGION"],
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
        region = os.environ["AWS_DEFAULT_REGION"]
        loop = TickLoop(
            lambda event: endpoint.call(tick, event),
            self.config.tick_seconds,
            region=region,
            account=ACCOUNT_ID,
            rule_arn=f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{tick.name}",
        ).start()
        self._stops.append(loop.stop)

    def exports(self) -> dict[str, str]:
        """The environment `chalice local --stage local` needs to use this running stack."""
        names = (
            "STAGE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_LAMBDA", "KMS_KEY_ID", "JWT_SECRET_ARN", "DEMO_PROVIDER_URL",
            "RUNNER_FUNCTION_NAME",
        )
        return {name: os.environ[name] for name in names if os.environ.get(name)}


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
    where = [
        ("REST API", api),
        ("WebSocket", f"{ws}?token=$TOKEN"),
    ]
    if env:
        where += [
            ("AWS (moto)", f"{env['AWS_ENDPOINT_URL']}  DynamoDB, KMS, Secrets Manager"),
            ("Lambda", f"{env['AWS_ENDPOINT_URL_LAMBDA']}  Invoke {env['RUNNER_FUNCTION_NAME']}"),
            ("demo", f"{env['DEMO_PROVIDER_URL']}  models demo/fast, demo/slow (no key)"),
        ]
    where.append(("tick", f"every {config.tick_seconds:g} s (TICK_SECONDS)"))
    if config.state_path is not None:
        where.append(("state", f"{config.state_path} (saved on Ctrl-C, loaded at start)"))
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
  curl -s $API/api/schedules {auth}
  curl -s -X PUT $API/api/schedules/$SID {auth} -d '{{"enabled": false}}'
  curl -s -X DELETE $API/api/schedules/$SID {auth}

Only the REST API, with `chalice local`, against this running stack (another shell):
  cd {ROOT} && export {exports}
  {_tool("chalice")} local --stage local --port 8000

Ctrl-C stops everything (the state is saved first).
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
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest-port", type=int, default=_env_int("REST_PORT", 8501), help="env REST_PORT")
    parser.add_argument("--ws-port", type=int, default=_env_int("WS_PORT", 8502), help="env WS_PORT")
    parser.add_argument("--aws-port", type=int, default=_env_int("DEVSTACK_AWS_PORT", 0),
                        help="moto's port (env DEVSTACK_AWS_PORT; 0: a free one)")
    parser.add_argument("--lambda-port", type=int, default=_env_int("DEVSTACK_LAMBDA_PORT", 0),
                        help="the Lambda Invoke API's port (env DEVSTACK_LAMBDA_PORT; 0: a free one)")
    parser.add_argument("--demo-port", type=int, default=_env_int("DEVSTACK_DEMO_PORT", 0),
                        help="the demo provider's port (env DEVSTACK_DEMO_PORT; 0: a free one)")
    parser.add_argument("--tick-seconds", type=float, default=_env_float("TICK_SECONDS", 60.0),
                        help="period of the tick (env TICK_SECONDS, default 60)")
    parser.add_argument("--state", default=os.environ.get("DEVSTACK_STATE") or str(DEFAULT_STATE),
                        help=f"state file (env DEVSTACK_STATE; default {DEFAULT_STATE.relative_to(ROOT)})")
    parser.add_argument("--no-state", action="store_true", help="neither load nor save any state")
    args = parser.parse_args(argv)
    if args.tick_seconds <= 0:
        parser.error("--tick-seconds must be positive")
    return StackConfig(
        host=args.host,
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        aws_port=args.aws_port,
        lambda_port=args.lambda_port,
        demo_port=args.demo_port,
        tick_seconds=args.tick_seconds,
        state_path=None if args.no_state else Path(args.state).expanduser().resolve(),
    )


def main(argv: list[str] | None = None) -> None:
    """Start, print the banner, wait for SIGINT/SIGTERM, stop (saving the state), exit 0.
    A start that fails (a port in use, an unusable state file) exits 1 with one line."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("devstack").setLevel(logging.INFO)
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
    """Exit at once, once everything is stopped and saved.

    `os._exit`, not `sys.exit`: the interpreter's own teardown of moto's module graph adds
    about two seconds to every Ctrl-C, and a runner thread left mid-stream (thread pools are
    joined at exit) could hold the process for minutes. Like a Lambda host going away, such
    a job's lease lapses and the next stack's tick marks it interrupted.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
