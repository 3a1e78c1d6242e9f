"""The web UI's files (`chalicelib/ui/`), served by the app itself: `GET /` and `GET /ui/{name}`.

- Only the names in `ASSETS` are served: a request names a key of that table, never a
  path, so `../app.py` or `%2e%2e/` cannot reach any other file (they are 404s).
- Files are read at request time, on first use, and kept (`import app` reads nothing).
- `config.js` is generated per request: `window.BENCH_CONFIG = {wsUrl: ...}`, the WebSocket
  API's URL from env `WS_URL` (deployed: the template sets it; the local stack: its gateway).
  Without it `wsUrl` is null and the page polls instead of listening.
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

from chalicelib.errors import NotFound

UI_DIR = Path(__file__).resolve().parent / "ui"

_JS = "text/javascript; charset=utf-8"
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "trends.css": "text/css; charset=utf-8",
    "monitor.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml; charset=utf-8",
    # ES modules, one concern each; app.js is the entry point and imports the others.
    "app.js": _JS,
    "api.js": _JS,
    "chart.js": _JS,
    "dialogs.js": _JS,
    "dom.js": _JS,
    "format.js": _JS,
    "forms.js": _JS,
    "history-compare.js": _JS,
    "history-filters.js": _JS,
    "jobs.js": _JS,
    "live.js": _JS,
    "model-picker.js": _JS,
    "models.js": _JS,
    "router.js": _JS,
    "schedules.js": _JS,
    "session.js": _JS,
    "status.js": _JS,
    "toasts.js": _JS,
    "view-alerts.js": _JS,
    "view-auth.js": _JS,
    "view-benchmark.js": _JS,
    "view-history.js": _JS,
    "view-schedule-dialog.js": _JS,
    "view-schedules.js": _JS,
    "view-settings.js": _JS,
    "view-trends.js": _JS,
    # Trends and the schedule list's health column (issue 16, items 8 and 9).
    "health.js": _JS,
    "stats.js": _JS,
    "trend-chart.js": _JS,
}
CONFIG_NAME = "config.js"
CONFIG_TYPE = "text/javascript; charset=utf-8"

# Static files may be cached a little; the config never (WS_URL is read per request).
STATIC_CACHE = "public, max-age=60"
NO_CACHE = "no-store"

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

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


def index() -> tuple[str, dict[str, str]]:
    """The page, with its CSP."""
    body, answer = asset("index.html")
    return body, {**answer, "Cache-Control": NO_CACHE, "Content-Security-Policy": content_security_policy()}


def content_security_policy() -> str:
    """Everything from the app itself; the only exceptions are named one by one."""
    scripts = " ".join(["'self'", *(f"'{digest}'" for digest in inline_script_hashes())])
    url = ws_url()
    connect = " ".join(["'self'", *filter(None, [ws_origin(url) if url else None])])
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


def ws_url() -> str | None:
    """The WebSocket API's URL (`WS_URL`, read per request), or None when there is none."""
    return os.environ.get("WS_URL", "").strip() or None


def config_js() -> tuple[str, dict[str, str]]:
    """The runtime config as a script; JSON-encoded so no value can break out of it."""
    config = {"wsUrl": ws_url()}
    payload = json.dumps(config).replace("<", "\\u003c")
    body = f"window.BENCH_CONFIG = Object.freeze({payload});\n"
    return body, {"Content-Type": CONFIG_TYPE, "Cache-Control": NO_CACHE, **SECURITY_HEADERS}


def serve(name: str) -> tuple[str, dict[str, str]]:
    """What `GET /ui/{name}` answers (the page under this name too, with its policy)."""
    if name == CONFIG_NAME:
        return config_js()
    if name == "index.html":
        return index()
    return asset(name)
