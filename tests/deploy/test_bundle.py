"""The bundle runs a runner job on the Lambda runtime it is built for (DESIGN §7a).

The unzipped `deployment.zip` is run by a CPython 3.13 with nothing on its path but the
bundle and the packages of the oldest Lambda python3.13 runtime we allow for: boto3 and
botocore `OLDEST_RUNTIME_SDK` (the release the runtime shipped with at its launch, older
than any it has been updated to since), installed in a venv of their own, once. The
bundle's compiled distributions are built for aarch64; this machine loads the same
releases built for it instead (`bundle.host_overlay`), the rest is the bundle's own code.
AWS is moto's server on loopback, the provider a loopback server speaking OpenAI's stream.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from scripts import bundle
from tests.deploy.conftest import ROOT

OLDEST_RUNTIME_SDK = "1.34.145"
RUNTIME_VENV = ROOT / "build" / f"lambda-runtime-py313-boto3-{OLDEST_RUNTIME_SDK}"


def _runtime_site_packages(python: str) -> Path:
    """A venv holding only what the Lambda runtime brings: boto3/botocore at the oldest SDK."""
    site = RUNTIME_VENV / "lib" / "python3.13" / "site-packages"
    marker = RUNTIME_VENV / ".installed"
    if not marker.exists():
        subprocess.run([python, "-m", "venv", "--clear", str(RUNTIME_VENV)], check=True)
        subprocess.run(
            [str(RUNTIME_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"boto3=={OLDEST_RUNTIME_SDK}", f"botocore=={OLDEST_RUNTIME_SDK}"],
            check=True, timeout=600,
        )
        marker.touch()
    return site


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def moto_server(aws):
    """moto's HTTP server in this process: it serves the same (emptied) backends as the
    `aws` fixture, so the tables exist and this test can read what the bundle wrote."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_the_bundle_runs_a_runner_job_under_python313_and_the_oldest_runtime_botocore(
    dev_package, moto_server, provider_server, tmp_path
):
    python = bundle.find_python()
    if python is None:
        pytest.skip("no CPython 3.13 on this machine (set PYTHON313)")
    site = _runtime_site_packages(python)
    task, overlay = tmp_path / "task", tmp_path / "overlay"
    with zipfile.ZipFile(dev_package.bundle) as archive:
        archive.extractall(task)
    swapped = bundle.host_overlay(dev_package.bundle, overlay)
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "STAGE": "test", "JWT_SECRET": "bundle-test-secret-long-enough-for-hs256",
        "ALLOW_PRIVATE_ENDPOINTS": "true", "RUNNER_POLL_SECONDS": "0.05",
        "PROVIDER_URL": provider_server.base_url_for("openai"),
    }
    code = (Path(__file__).parent / "bundle_job.py").read_text()
    result = bundle.run_in_bundle(python, [overlay, task, site], code, env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["python"] == [3, 13]
    assert report["botocore"] == OLDEST_RUNTIME_SDK
    files = report["files"]
    assert files["app"].startswith(f"{task}/") and files["chalicelib.tables"].startswith(f"{task}/")
    assert files["boto3"].startswith(f"{site}/") and files["botocore"].startswith(f"{site}/")
    assert set(swapped) == {"pydantic_core"} and files["pydantic_core"].startswith(f"{overlay}/")
    outcome = report["outcome"]
    assert outcome["status"] == "done", outcome

    from chalicelib.tables import JobModel, RunModel

    assert JobModel.get(outcome["job_id"]).status == "done"
    (run,) = RunModel.query(report["user_id"])
    (result_row,) = run.results
    assert result_row["success"] is True and result_row["output_tokens"] > 0
