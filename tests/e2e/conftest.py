"""The `local_stack` fixture: `python -m devstack` as a subprocess, as `make run` starts it.

Session-scoped and shared: the end-to-end tests (and the UI's browser test) talk to it only
over HTTP and WebSocket, as a user would. It runs on free ports with `TICK_SECONDS=1` and a
state directory in a temp directory, in its own process group, and is always stopped at the
end of the session (SIGTERM to the group, SIGKILL if that does not end it).

`stop()` and `start()` are the user's Ctrl-C and `make run` again: tests use them to check
what survives a restart. The stack's console goes to `log_path` (shown when a start fails).
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The browser tests' fixtures (stack, browser, open_page), for every module of this folder.
from tests.e2e.browser import browser, open_page, stack  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "local stack is up"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# What the subprocess inherits from the test run; everything AWS-shaped is left out so the
# stack configures itself exactly as `make run` does on a clean machine.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "SSL_CERT_FILE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStack:
    """A dev stack subprocess: `rest_url` (http://…), `ws_url` (ws://…/api; add ?token=)."""

    state_dir: Path
    log_path: Path
    rest_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    tick_seconds: float = 1.0
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    returncodes: list[int] = field(default_factory=list)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/api"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def env(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        env.update(
            REST_PORT=str(self.rest_port),
            WS_PORT=str(self.ws_port),
            TICK_SECONDS=str(self.tick_seconds),
            DEVSTACK_STATE_DIR=str(self.state_dir),
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        return env

    def start(self) -> None:
        """Start the stack and return once its banner is printed and REST answers."""
        if self.running:
            return
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack"],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals all of it
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the dev stack exited with {self.process.returncode}:\n{self.log(offset)}")
            if READY_LINE in self.log(offset) and self._rest_answers():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the dev stack did not start in {START_TIMEOUT_S:.0f} s:\n{self.log(offset)}")

    def stop(self, signum: int = signal.SIGTERM) -> int | None:
        """Stop as a user does (SIGINT is Ctrl-C; SIGTERM the same clean stop) by signalling
        the whole process group; the stack's exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signum)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        code = self.process.returncode
        self.returncodes.append(code)
        self.process = None
        return code

    def restart(self, signum: int = signal.SIGTERM) -> int | None:
        code = self.stop(signum)
        self.start()
        return code

    def kill(self) -> None:
        """The last resort: SIGKILL to the whole group (nothing is saved)."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait(10)

    def exports(self) -> dict[str, str]:
        """The environment the running stack printed in its banner (`export NAME=value …`)."""
        lines = [line for line in self.log().splitlines() if " && export " in line]
        assert lines, "no exports in the stack's banner"
        return dict(word.split("=", 1) for word in shlex.split(lines[-1].split(" && export ", 1)[1]))

    def log(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _rest_answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.rest_url}/api/schedules", timeout=2)
        except urllib.error.HTTPError:
            return True  # 401: up and guarding
        except OSError:
            return False
        return True


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """The running dev stack (see `LocalStack`); always stopped when the session ends."""
    directory = tmp_path_factory.mktemp("devstack")
    running = LocalStack(state_dir=directory / "state", log_path=directory / "devstack.log")
    try:
        running.start()
        yield running
    finally:
        try:
            running.stop()
        finally:
            running.kill()
