"""The UI's serving routes: `GET /`, `GET /ui/{name}` (an allow-list), `ui/config.js`.

The browser flow itself is tests/e2e/test_ui.py.
"""
from __future__ import annotations

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


@pytest.mark.parametrize(
    "name, content_type",
    [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8"), ("index.html", "text/html; charset=utf-8")],
)
def test_assets_have_their_text_types(http, name, content_type):
    response = http.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
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


def test_every_allow_listed_file_exists():
    for name in ui_assets.ASSETS:
        assert (ui_assets.UI_DIR / name).is_file(), name


def test_ws_url_comes_from_the_environment_at_request_time(http, monkeypatch):
    monkeypatch.setenv("WS_URL", "wss://abc123.execute-api.eu-west-1.amazonaws.com/api")
    assert served_config(http)["wsUrl"] == "wss://abc123.execute-api.eu-west-1.amazonaws.com/api"
    monkeypatch.setenv("WS_URL", "wss://ws.example.com/live")
    assert served_config(http)["wsUrl"] == "wss://ws.example.com/live"


def test_ws_url_defaults_to_the_page_host_on_the_local_socket_port(http, monkeypatch):
    monkeypatch.delenv("WS_URL", raising=False)
    monkeypatch.delenv("WS_PORT", raising=False)
    assert served_config(http, {"Host": "localhost:8501"})["wsUrl"] == "ws://localhost:8502/api"
    monkeypatch.setenv("WS_PORT", "18502")
    assert served_config(http, {"Host": "10.0.0.5:18501"})["wsUrl"] == "ws://10.0.0.5:18502/api"
    https = {"Host": "bench.example.com", "X-Forwarded-Proto": "https"}
    assert served_config(http, https)["wsUrl"] == "wss://bench.example.com:18502/api"


@pytest.mark.parametrize("host", ["evil.com/<script>", "a b", "", '"];alert(1)//'])
def test_a_strange_host_header_cannot_shape_the_script(monkeypatch, host):
    monkeypatch.delenv("WS_URL", raising=False)
    monkeypatch.delenv("WS_PORT", raising=False)
    assert ui_assets.ws_url({"Host": host}) == "ws://127.0.0.1:8502/api"


def test_config_values_cannot_close_the_script(monkeypatch):
    monkeypatch.setenv("WS_URL", "wss://x/</script><script>alert(1)</script>")
    body, _ = ui_assets.config_js({})
    assert "</script>" not in body and "<" not in body


def test_import_app_reads_no_ui_file():
    code = "import app; from chalicelib import ui_assets; print(ui_assets._read.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
