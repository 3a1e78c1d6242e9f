"""Cold start: the median time of `import app` in fresh Python processes.

Every Lambda of the app (API, tick, runner, WebSocket handlers) imports app.py on a cold
start, so this is paid on each. Target: at most 0.5 s here. Run: `python bench/cold_start.py`.

`chalicelib`'s modules load on first use (see `chalicelib/__init__.py`), so a function's
first event then loads what its handler touches: the "first event" lines add those modules
(a REST request: auth and its route's module; the tick; the runner with httpx and the
provider clients; and every module, which is what `import app` cost before loading on use).

It also prices the observability choice (DESIGN §7a): `import app` plus what AWS Lambda
Powertools' Logger and Metrics would add (their import and construction), against the
app's own `chalicelib.logs` + `chalicelib.metrics`, which `import app` already includes.
Powertools is measured only when installed (`requirements-dev.txt` pins it for this).
"""
from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("COLD_START_RUNS", "15"))
TARGET_S = 0.5

_LOAD = "import app, chalicelib\nfor name in {names}: getattr(getattr(chalicelib, name), '__all__', None)\n"
_EVERY_MODULE = "[m.name for m in __import__('pkgutil').iter_modules(chalicelib.__path__)]"

PROBES = {
    "import app": "import app",
    "first event, REST (auth + schedules)": _LOAD.format(names="('auth', 'schedules', 'payloads')"),
    "first event, tick": _LOAD.format(names="('tick',)"),
    "first event, runner": _LOAD.format(names="('runner',)"),
    "first event touching every module": _LOAD.format(names=_EVERY_MODULE),
    "import app + Powertools Logger/Metrics": (
        "import app\n"
        "from aws_lambda_powertools import Logger, Metrics\n"
        "Logger(service='benchmark-scheduler'); Metrics(namespace='benchmark-scheduler', service='x')"
    ),
}


def one_import(code: str) -> float:
    probe = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(code: str) -> list[float]:
    one_import(code)  # compile .pyc files once, as a deployed bundle ships them warm on disk
    return sorted(one_import(code) for _ in range(RUNS))


def main() -> None:
    medians = {}
    for label, code in PROBES.items():
        if "aws_lambda_powertools" in code and importlib.util.find_spec("aws_lambda_powertools") is None:
            print(f"{label}: skipped (aws-lambda-powertools is not installed)")
            continue
        times = measure(code)
        medians[label] = median = statistics.median(times)
        verdict = "PASS" if median <= TARGET_S else "FAIL"
        target = "" if label.startswith("first event") else f" (target <= {TARGET_S * 1000:.0f} ms: {verdict})"
        print(f"{label}, {RUNS} fresh processes: median {median * 1000:.0f} ms, "
              f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms{target}")
    if "import app + Powertools Logger/Metrics" in medians:
        base, with_powertools = medians["import app"], medians["import app + Powertools Logger/Metrics"]
        print(f"Powertools would add {(with_powertools - base) * 1000:.0f} ms to every cold start")
    heavy = [m for m in ("httpx", "websockets", "moto", "aws_lambda_powertools") if _imported_by_app(m)]
    print("heavy modules imported by app.py:", ", ".join(heavy) or "none")


def _imported_by_app(module: str) -> bool:
    probe = f"import sys, app; print({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    return out.stdout.strip() == "True"


if __name__ == "__main__":
    main()
