"""`chalicelib`'s modules load on first use: `import app` stays cheap, every function loads
only what its handler touches, and a module is never seen half-loaded by another thread."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import chalicelib

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_app_loads_no_aws_sdk_no_pydantic_and_no_http_client():
    loaded = _modules_after("import app")
    heavy = {"botocore", "boto3", "pynamodb", "pydantic", "httpx", "jwt"} & {name.split(".")[0] for name in loaded}
    assert not heavy, f"import app loaded {sorted(heavy)}"


def test_a_module_loads_on_first_attribute_read_with_what_it_imports():
    loaded = _modules_after("import app\nfrom chalicelib import schedules\nschedules.ScheduleCreate")
    assert {"pynamodb.models", "pydantic"} <= loaded
    assert "httpx" not in loaded  # the runner's client stays out of a REST request


def _deferred(path: Path) -> chalicelib._Deferred:
    spec = importlib.util.spec_from_file_location("slow_module_for_test", path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__class__ = chalicelib._Deferred
    return module  # type: ignore[return-value]


def test_threads_racing_the_first_read_all_see_the_whole_module(tmp_path):
    source = tmp_path / "slow_module_for_test.py"
    source.write_text("import time\nfirst = 1\ntime.sleep(0.3)\nlast = 2\nexecutions = [1]\n")
    module = _deferred(source)
    start = threading.Barrier(8)
    seen: list[object] = []

    def read() -> None:
        start.wait()
        try:
            seen.append(module.last)
        except AttributeError as err:
            seen.append(err)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [2] * 8
    assert module.executions == [1]  # executed once


def test_a_module_that_fails_to_load_fails_every_reader_and_is_not_kept_half_loaded(tmp_path):
    source = tmp_path / "slow_module_for_test.py"
    source.write_text("first = 1\nraise RuntimeError('broken on purpose')\n")
    module = _deferred(source)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="broken on purpose"):
            module.first  # noqa: B018


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_module"):
        chalicelib.no_such_module  # noqa: B018
