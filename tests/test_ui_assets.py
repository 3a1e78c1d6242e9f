"""The UI's serving routes: `GET /`, `GET /ui/{name}` (an allow-list), `ui/config.js`, and
the headers every answer carries (CSP without `unsafe-inline`, nosniff, no referrer, no framing).

The browser flow itself is tests/e2e/test_ui.py (it also checks the page runs with no CSP
violation).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import ui_assets

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def http():
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as client:
        yield client.http


def served_config(http, headers=None) -> dict:
    response = http.get("/ui/config.js", headers=headers or {})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Cache-Control"] == "no-store"
    match = re.fullmatch(r"window\.BENCH_CONFIG = Object\.freeze\((.*)\);\n", response.body.decode())
    assert match, response.body
    return json.loads(match.group(1))


def test_index_is_the_page_with_relative_assets(http):
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    for asset in ('href="ui/style.css"', 'src="ui/config.js"', 'src="ui/app.js"'):
        assert asset in page  # relative: the page works under a stage prefix (/api/)


EXPECTED_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml; charset=utf-8"}


@pytest.mark.parametrize("name", sorted(ui_assets.ASSETS))
def test_assets_have_their_text_types(http, name):
    response = http.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == EXPECTED_TYPES[Path(name).suffix]
    assert response.body.decode() == (ROOT / "chalicelib" / "ui" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/ui/app.py",
        "/ui/..%2Fapp.py",
        "/ui/..%2F..%2Fapp.py",
        "/ui/%2e%2e%2fui_assets.py",
        "/ui/..",
        "/ui/.env",
        "/ui/APP.JS",
        "/ui/app.js%00.png",
        "/ui/" + "x" * 300,
    ],
)
def test_only_allow_listed_names_are_served(http, path):
    response = http.get(path)
    assert response.status_code in (403, 404), (path, response.status_code)
    if response.status_code == 404:
        assert json.loads(response.body)["error"] == "No such UI file"


def test_every_allow_listed_file_exists_and_every_ui_file_is_allow_listed():
    on_disk = {path.name for path in ui_assets.UI_DIR.iterdir() if path.is_file()}
    assert on_disk == set(ui_assets.ASSETS)


def test_every_module_import_names_a_served_file():
    """A module the browser cannot fetch would stop the whole UI, deployed or not."""
    imported = set()
    for path in ui_assets.UI_DIR.glob("*.js"):
        for name in re.findall(r"""^\s*import\b[^;]*?from\s+["']\./([^"']+)["']""", path.read_text(encoding="utf-8"), re.M | re.S):
            imported.add(name)
    assert imported, "no imports found: the pattern is wrong"
    assert imported <= set(ui_assets.ASSETS), imported - set(ui_assets.ASSETS)
    entry = re.findall(r'<script type="module" src="ui/([^"]+)"', (ui_assets.UI_DIR / "index.html").read_text(encoding="utf-8"))
    assert entry == ["app.js"]
    assert imported | {"app.js"} == {name for name in ui_assets.ASSETS if name.endswith(".js")}  # none unused


# --- headers ---------------------------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    directives = [part.split() for part in response.headers["Content-Security-Policy"].split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize("path", ["/", "/ui/index.html", "/ui/app.js", "/ui/style.css", "/ui/config.js", "/ui/icon.svg"])
def test_every_ui_answer_forbids_sniffing_referrers_and_framing(http, path):
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", ["/", "/ui/index.html"])
def test_the_page_policy_allows_nothing_inline_but_its_one_hashed_script(http, path):
    response = http.get(path)
    csp = policy(response)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert csp["default-src"] == ["'none'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    page = response.body.decode()
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(inline) == 1  # the trailing-slash redirect; everything else is a file
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert csp["script-src"] == ["'self'", f"'sha256-{digest}'"]


def test_the_page_sets_no_inline_style_or_handler_and_the_scripts_no_style_attribute():
    """What the CSP would block, kept out of the source (the browser test would see it too)."""
    page = (ui_assets.UI_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"\sstyle\s*=", page)
    assert not re.search(r"\son[a-z]+\s*=", page)
    assert "<style" not in page
    for path in ui_assets.UI_DIR.glob("*.js"):
        code = path.read_text(encoding="utf-8")
        for banned in (r"setAttribute\(\s*[\"']style", r"\binnerHTML\b", r"\beval\(", r"new Function\("):
            assert not re.search(banned, code), f"{path.name}: {banned}"


def test_connect_src_allows_the_socket_config_js_names(http, monkeypatch):
    monkeypatch.setenv("WS_URL", "wss://abc123.execute-api.eu-west-1.amazonaws.com/api")
    assert policy(http.get("/"))["connect-src"] == ["'self'", "wss://abc123.execute-api.eu-west-1.amazonaws.com"]
    monkeypatch.setenv("WS_URL", "ws://127.0.0.1:18502/api")
    assert served_config(http)["wsUrl"] == "ws://127.0.0.1:18502/api"
    assert policy(http.get("/"))["connect-src"] == ["'self'", "ws://127.0.0.1:18502"]


@pytest.mark.parametrize("ws_url", ["wss://x.example.com; script-src *", "javascript:alert(1)", "https://x.example.com/api", "wss://x y/api"])
def test_a_strange_ws_url_never_widens_the_policy(http, monkeypatch, ws_url):
    monkeypatch.setenv("WS_URL", ws_url)
    csp = policy(http.get("/"))
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"][0] == "'self'" and "*" not in csp["script-src"]


def test_ws_url_comes_from_the_environment_at_request_time(http, monkeypatch):
    monkeypatch.setenv("WS_URL", "wss://abc123.execute-api.eu-west-1.amazonaws.com/api")
    assert served_config(http)["wsUrl"] == "wss://abc123.execute-api.eu-west-1.amazonaws.com/api"
    monkeypatch.setenv("WS_URL", "wss://ws.example.com/live")
    assert served_config(http)["wsUrl"] == "wss://ws.example.com/live"


def test_without_ws_url_there_is_no_socket_and_no_guess(http, monkeypatch):
    """The app knows no port of the local stack: the URL comes from the environment only,
    whatever the request's Host says."""
    monkeypatch.delenv("WS_URL", raising=False)
    assert served_config(http, {"Host": "localhost:8501"})["wsUrl"] is None
    assert policy(http.get("/", headers={"Host": "evil.example.com"}))["connect-src"] == ["'self'"]


def test_config_values_cannot_close_the_script(monkeypatch):
    monkeypatch.setenv("WS_URL", "wss://x/</script><script>alert(1)</script>")
    body, _ = ui_assets.config_js()
    assert "</script>" not in body and "<" not in body


def test_import_app_reads_no_ui_file():
    code = "import app; from chalicelib import ui_assets; print(ui_assets._read.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
