"""The web UI's files (`chalicelib/ui/`), served by the app itself: `GET /` and `GET /ui/{name}`.

- Only the names in `ASSETS` are served: a request names a key of that table, never a
  path, so `../app.py` or `%2e%2e/` cannot reach any other file (they are 404s).
- Files are read at request time, on first use, and kept (`import app` reads nothing).
- `config.js` is generated per request: `window.BENCH_CONFIG = {wsUrl: ...}`. Deployed, the
  WebSocket API is another API Gateway host than the REST API, named by env `WS_URL`;
  without it the socket is the page's host on port `WS_PORT` (8502, the local stack's)
  with path `/api`.
- Text types only (Chalice's binary types would need base64 handling).
- Every answer carries `SECURITY_HEADERS` (nosniff, no referrer, no framing); the page also
  carries a Content-Security-Policy without `unsafe-inline`: scripts and styles come from
  the app's own files, the one inline script of `index.html` (the trailing-slash redirect,
  which must run before any relative URL can resolve) is allowed by its hash, and
  `connect-src` names the REST API (`'self'`) and the WebSocket origin of `config.js`.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Mapping

from chalicelib.errors import NotFound

UI_DIR = Path(__file__).resolve().parent / "ui"

_JS = "text/javascript; charset=utf-8"
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml; charset=utf-8",
    # ES modules, one concern each; app.js is the entry point and imports the others.
    "app.js": _JS,
    "api.js": _JS,
    "chart.js": _JS,
    "dialogs.js": _JS,
    "dom.js": _JS,
    "format.js": _JS,
    "forms.js": _JS,
    "jobs.js": _JS,
    "live.js": _JS,
    "models.js": _JS,
    "router.js": _JS,
    "schedules.js": _JS,
    "session.js": _JS,
    "status.js": _JS,
    "toasts.js": _JS,
    "view-auth.js": _JS,
    "view-history.js": _JS,
    "view-schedule-dialog.js": _JS,
    "view-schedules.js": _JS,
    "view-settings.js": _JS,
}
CONFIG_NAME = "config.js"
CONFIG_TYPE = "text/javascript; charset=utf-8"

DEFAULT_WS_PORT = 8502
WS_PATH = "/api"

# Static files may be cached a little; the config never (WS_URL is read per request).
STATIC_CACHE = "public, max-age=60"
NO_CACHE = "no-store"

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

_HOST = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d+)?$")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_WS_ORIGIN = re.compile(r"^(wss?://(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?)(?:[/?#]|$)")


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
    return _read(name), {"Content-Type": content_type, "Cache-Control": STATIC_CACHE, **SECURITY_HEADERS}


def index(headers: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """The page, with its CSP; `headers` (the request's) name the host the socket is on."""
    body, answer = asset("index.html")
    return body, {**answer, "Cache-Control": NO_CACHE, "Content-Security-Policy": content_security_policy(headers)}


def content_security_policy(headers: Mapping[str, str] | None) -> str:
    """Everything from the app itself; the only exceptions are named one by one."""
    scripts = " ".join(["'self'", *(f"'{digest}'" for digest in inline_script_hashes())])
    connect = " ".join(["'self'", *filter(None, [ws_origin(ws_url(headers))])])
    return "; ".join([
        "default-src 'none'",
        f"script-src {scripts}",
        "style-src 'self'",
        "img-src 'self'",
        f"connect-src {connect}",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


@functools.lru_cache(maxsize=None)
def inline_script_hashes() -> tuple[str, ...]:
    """`sha256-…` of each inline <script> of index.html, as CSP matches them (exact bytes)."""
    return tuple(
        "sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode()
        for code in _INLINE_SCRIPT.findall(_read("index.html"))
    )


def ws_origin(url: str) -> str | None:
    """scheme://host[:port] of a WebSocket URL; None for anything else (never echoed raw)."""
    match = _WS_ORIGIN.match(url)
    return match.group(1) if match else None


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
    return body, {"Content-Type": CONFIG_TYPE, "Cache-Control": NO_CACHE, **SECURITY_HEADERS}


def serve(name: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """What `GET /ui/{name}` answers (the page under this name too, with its policy)."""
    if name == CONFIG_NAME:
        return config_js(headers)
    if name == "index.html":
        return index(headers)
    return asset(name)
