"""The local stack: the AWS endpoints the app talks to, served on loopback, plus the app.

One code path (DESIGN §1): the app reads the same standard AWS environment it reads on
Lambda (`AWS_ENDPOINT_URL`, region, credentials, table names); here those point at moto's
server mode, in this process. Nothing in `chalicelib` knows it is local.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

# Embedded defaults: `make run` needs no configuration and no AWS account.
DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "devstack",
    "AWS_SECRET_ACCESS_KEY": "devstack",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "STAGE": "local",
    "JWT_SECRET": "devstack-local-secret-change-me-for-anything-real",
}


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


@dataclass
class Stack:
    config: StackConfig
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        self._start_aws()
        self._start_rest()

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

    def _start_rest(self) -> None:
        from chalice.cli.factory import CLIFactory
        from chalice.local import create_local_server

        from devstack.apigateway import emulate_authorizer_errors

        emulate_authorizer_errors()
        config = CLIFactory(project_dir=str(ROOT)).create_config_obj(chalice_stage_name="local")
        server = create_local_server(
            config.chalice_app, config, self.config.host, self.config.rest_port
        )
        thread = threading.Thread(target=server.server.serve_forever, daemon=True)
        thread.start()
        self._stops.append(server.shutdown)


def quick_start(config: StackConfig) -> str:
    base = f"http://{config.host}:{config.rest_port}"
    return f"""
Benchmark Scheduler local stack
  REST API   {base}

Quick start (copy-paste):
  TOKEN=$(curl -s {base}/api/auth/register -H 'content-type: application/json' \\
    -d '{{"email": "me@example.com", "password": "correct-horse"}}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  # already registered? log in instead:
  #   TOKEN=$(curl -s {base}/api/auth/login -d '{{"email": "me@example.com", "password": "correct-horse"}}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')

  curl -s {base}/api/schedules -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
    -d '{{"name": "Daily GPT check", "models": ["gpt-4o-mini", "claude-3-5-haiku-latest"], "prompt": "Explain quantum computing in one paragraph.", "max_tokens": 512, "temperature": 0.7, "interval_hours": 24}}'
  curl -s {base}/api/schedules -H "Authorization: Bearer $TOKEN"
  curl -s -X PUT {base}/api/schedules/<id> -H "Authorization: Bearer $TOKEN" -d '{{"enabled": false}}'
  curl -s -X DELETE {base}/api/schedules/<id> -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rest-port", type=int, default=int(os.environ.get("REST_PORT", 8501)))
    parser.add_argument("--ws-port", type=int, default=int(os.environ.get("WS_PORT", 8502)))
    args = parser.parse_args(argv)
    config = StackConfig(host=args.host, rest_port=args.rest_port, ws_port=args.ws_port)
    stack = Stack(config)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stack.start()
    print(quick_start(config), flush=True)
    try:
        stopped.wait()
    finally:
        print("devstack: stopping", flush=True)
        stack.stop()
