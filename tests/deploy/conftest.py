"""The packaged stages: `make package` run once per stage and session (DESIGN §7).

The real `make package` (scripts/package.py: the staged project, `chalice package` with the
generated merge template, the dependencies built for python3.13 on arm64) writes into a
temporary directory; the tests read its `sam.json` and `deployment.zip`. No AWS account is
involved. Packaging needs PyPI (pip downloads the target's wheels); pip's cache makes
repeat runs take well under a minute.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED_STAGES = ("dev", "prod")


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


class Package:
    def __init__(self, stage: str, outdir: Path, log: str):
        self.stage = stage
        self.outdir = outdir
        self.log = log
        self.template = json.loads((outdir / "sam.json").read_text())
        self.resources = self.template["Resources"]
        self.bundle = outdir / "deployment.zip"

    def of_type(self, kind: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    def props(self, logical_id: str) -> dict:
        return self.resources[logical_id]["Properties"]

    def sub(self, value: object) -> object:
        """`${Stage}` of a `Fn::Sub` replaced by the packaged stage; other values unchanged."""
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"].replace("${Stage}", self.stage)
        return value

    def role_policy(self, function_logical_id: str) -> dict:
        """The one inline policy of the function's role."""
        role = self.props(function_logical_id)["Role"]["Fn::GetAtt"][0]
        (inline,) = self.props(role)["Policies"]
        return inline["PolicyDocument"]


_BUILT: dict[str, Package] = {}


def build(stage: str, tmp_path_factory) -> Package:
    """`make package STAGE=stage`, once per session."""
    if stage in _BUILT:
        return _BUILT[stage]
    outdir = tmp_path_factory.mktemp(f"package-{stage}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    command = [
        "make", "--no-print-directory", "package",
        f"STAGE={stage}", f"BUILD={outdir}", "REGION=us-east-1",
        f"BIN={Path(sys.executable).parent}",
        "STAMP=",  # the venv is whatever runs the tests: never (re)install from here
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        if not _pypi_reachable():
            pytest.skip("PyPI is unreachable: packaging downloads the Lambda runtime's wheels from it")
        pytest.fail(f"make package STAGE={stage} failed:\n{log}")
    _BUILT[stage] = Package(stage, outdir, log)
    return _BUILT[stage]


@pytest.fixture(scope="session", params=DEPLOYED_STAGES)
def package(request, tmp_path_factory) -> Package:
    return build(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def dev_package(tmp_path_factory) -> Package:
    """The dev stage alone, for tests whose subject is the same in every stage."""
    return build("dev", tmp_path_factory)
