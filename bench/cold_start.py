"""Cold start: the median time of `import app` in fresh Python processes.

Every Lambda of the app (API, tick, runner, WebSocket handlers) imports app.py on a cold
start, so this is paid on each. Target: at most 0.5 s here. Run: `python bench/cold_start.py`.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("COLD_START_RUNS", "15"))
TARGET_S = 0.5

PROBE = (
    "import time; t = time.perf_counter(); import app; "
    "print(time.perf_counter() - t)"
)


def one_import() -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    one_import()  # compile .pyc files once, as a deployed bundle ships them warm on disk
    times = sorted(one_import() for _ in range(RUNS))
    median = statistics.median(times)
    print(f"import app, {RUNS} fresh processes: median {median * 1000:.0f} ms, "
          f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms "
          f"(target <= {TARGET_S * 1000:.0f} ms: {'PASS' if median <= TARGET_S else 'FAIL'})")
    heavy = [m for m in ("httpx", "websockets", "moto") if _imported_by_app(m)]
    print("heavy modules imported by app.py:", ", ".join(heavy) or "none")


def _imported_by_app(module: str) -> bool:
    probe = f"import sys, app; print({module!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    return out.stdout.strip() == "True"


if __name__ == "__main__":
    main()
