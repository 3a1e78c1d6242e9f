"""The environment every moto-backed bench runs in: fake credentials, one region, no AWS
endpoint from the developer's shell (nothing may reach a real account). Call `isolate()`
before importing `chalicelib`, whose settings are read from this environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def isolate(**extra: str) -> None:
    sys.path.insert(0, str(ROOT))
    settings = {
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "bench", **extra,
    }
    os.environ.update(settings)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]
