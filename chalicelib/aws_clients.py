"""boto3 clients: one per (service, endpoint) per process, built on first use.

A client costs ~20 ms to build and a Lambda container reuses it across invocations, but
building one at import would tax every cold start, so each is made when first asked for.
botocore clients are thread-safe once built; building them concurrently is not, hence the
lock. Tests `reset()` when the environment a client was built from changes.
"""
from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}


def client(service: str, *, endpoint_url: str | None = None, config: Any = None) -> Any:
    key = (service, endpoint_url)
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                import boto3

                found = _clients[key] = boto3.session.Session().client(
                    service, endpoint_url=endpoint_url, config=config
                )
    return found


def reset() -> None:
    with _lock:
        _clients.clear()
