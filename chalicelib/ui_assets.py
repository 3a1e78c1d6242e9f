"""The web UI's files (`chalicelib/ui/`), served by the app itself: `GET /` and `GET /ui/{name}`.

- Only the names in `ASSETS` are served: a request names a key of that table, never a
  path, so `../app.py` or `%2e%2e/` cannot reach any other file (they are 404s).
- Files are read at request time, on first use, and kept (`import app` reads nothing).
- `config.js` is generated per request: `window.BENCH_CONFIG = {wsUrl: ...}`. Deployed, the
  WebSocket API is another API Gateway host than the REST API, named by env `WS_URL`;
  without it the socket is the page's host on port `WS_PORT` (8502, the local stack's)
  with path `/api`.
- Text types only (Chalice's binary types would need base64 handling).
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Mapping

from chalicelib.errors import NotFound

UI_DIR = Path(__file__).resolve().parent / "ui"

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
CONFIG_NAME = "config.js"
CONFIG_TYPE = "text/javascript; charset=utf-8"

DEFAULT_WS_PORT = 8502
WS_PATH = "/api"

# Static files may be cached a little; the config never (WS_URL is read per request).
STATIC_CACHE = "public, max-age=60"
NO_CACHE = "no-store"

_HOST = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d+)?$")


@functools.lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (UI_DIR / name).read_text(encoding="utf-8")


def asset(name: str) -> tuple[str, dict[str, str]]:
    """(body, headers) of one allow-listed file; `NotFound` for any other name."""
    if name == CONFIG_NAME:
        raise NotFound("Use config_js() for the config", {"name": name})
    content_type = ASSETS.get(name)
    if content_type is None:
        raise NotFound("No such UI file", {"name": name[:64]})
    return _read(name), {"Content-Type": content_type, "Cache-Control": STATIC_CACHE}


def index() -> tuple[str, dict[str, str]]:
    body, headers = asset("index.html")
    return body, {**headers, "Cache-Control": NO_CACHE}


def ws_url(headers: Mapping[str, str] | None) -> str:
    """`WS_URL` when set; else ws(s)://<the request's host>:<WS_PORT or 8502>/api."""
    explicit = os.environ.get("WS_URL", "").strip()
    if explicit:
        return explicit
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    match = _HOST.match(lowered.get("host", "").strip())
    host = match.group("host") if match else "127.0.0.1"
    scheme = "wss" if lowered.get("x-forwarded-proto", "").lower() == "https" else "ws"
    port = os.environ.get("WS_PORT", "").strip() or str(DEFAULT_WS_PORT)
    if not port.isdigit():
        port = str(DEFAULT_WS_PORT)
    return f"{scheme}://{host}:{port}{WS_PATH}"


def config_js(headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The runtime config as a script; JSON-encoded so no value can break out of it."""
    config = {"wsUrl": ws_url(headers)}
    payload = json.dumps(config).replace("<", "\\u003c")
    body = f"window.BENCH_CONFIG = Object.freeze({payload});\n"
    return body, {"Content-Type": CONFIG_TYPE, "Cache-Control": NO_CACHE}


def serve(name: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """What `GET /ui/{name}` answers."""
    if name == CONFIG_NAME:
        return config_js(headers)
    return asset(name)
