"""What every browser test of the UI shares: the stack under test, one Chromium, a page per
size signed in as a fresh account, the REST API for seeding, screenshots, and the checks that
nothing scrolls sideways or covers a control.

Browser: Debian's `/usr/bin/chromium` (package `chromium`) driven by Playwright's Python
package; Playwright's own browser download is never used. One browser per test module, one
context per page. Stack: the `local_stack` fixture (tests/e2e/conftest.py), or an already
running stack named by `E2E_REST_URL` (and `E2E_WS_URL`), e.g. `make run` in another terminal.
A test module imports the fixtures it uses: `from tests.e2e.browser import browser, open_page, stack`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
RUN_TIMEOUT_MS = 60_000  # trigger → runner → demo provider → saved run → job_completed
TERMINAL = {"done", "failed", "cancelled", "interrupted"}
# A real model name that made the schedule table overflow its card (issue 16), and one whose
# provider needs a key nobody stored here: `auth_failed` without any request leaving the machine.
LONG_MODEL = "anthropic/claude-haiku-4-5"
KEYLESS_MODEL = "openai/gpt-4o"

# --- the stack, the browser, an account ---------------------------------------------------------


@pytest.fixture(scope="module")
def stack(request):
    """`rest_url` and `ws_url` of the stack under test."""
    rest_url = os.environ.get("E2E_REST_URL")
    if rest_url:
        ws_url = os.environ.get("E2E_WS_URL", re.sub(r":\d+$", ":8502", rest_url.rstrip("/")) + "/api")
        return SimpleNamespace(rest_url=rest_url.rstrip("/"), ws_url=ws_url.replace("http", "ws", 1))
    local_stack = request.getfixturevalue("local_stack")
    if getattr(local_stack, "running", True) is False:  # a restart test may have left it stopped
        local_stack.start()
    return local_stack


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not installed at {CHROMIUM} (Debian: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def call(stack, method: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    """The REST API as a script would use it (seeding and checking what the page shows)."""
    request = urllib.request.Request(
        f"{stack.rest_url}/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from None


def wait_for_job(stack, token: str, job_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        job = call(stack, "GET", f"api/jobs/{job_id}", token)
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@dataclass
class Account:
    email: str
    token: str


def register(stack) -> Account:
    email = f"ui-{uuid.uuid4().hex[:10]}@example.com"
    answer = call(stack, "POST", "api/auth/register", body={"email": email, "password": "correct-horse-battery"})
    return Account(email, answer["access_token"])


# --- pages ---------------------------------------------------------------------------------------

# Records Content-Security-Policy violations as the page sees them (init scripts run whatever the CSP).
_CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


class Console:
    """Everything the page printed or threw, to check for CSP violations and leaked tokens."""

    def __init__(self, page):
        self.page = page
        self.lines: list[str] = []
        page.on("console", lambda message: self.lines.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda err: self.lines.append(f"pageerror: {err}"))

    def check(self, *tokens: str) -> None:
        errors = [line for line in self.lines if line.startswith("pageerror")]
        assert not errors, f"JavaScript errors on the page: {errors}"
        csp = [line for line in self.lines if "Content Security Policy" in line or "Refused to" in line]
        csp += self.page.evaluate("window.__csp || []")
        assert not csp, f"CSP violations: {csp}"
        for token in filter(None, tokens):
            leaked = [line for line in self.lines if token in line]
            assert not leaked, f"the console shows the token: {leaked}"


@pytest.fixture
def open_page(browser, stack):
    """open_page(size, account=None) → a page at `size`, signed in as `account` if given."""
    contexts = []

    def opener(size: dict, account: Account | None = None, *, widget_open: bool = False):
        context = browser.new_context(viewport=size, locale="en-US", timezone_id="Europe/Berlin")
        contexts.append(context)
        context.set_default_timeout(15_000)
        context.add_init_script(_CSP_WATCH)
        _point_at_stack_websocket(context, stack)
        if account:
            seed = {"bench.token": account.token, "bench.email": account.email, "bench.jobs.open": "1" if widget_open else "0"}
            context.add_init_script(f"Object.entries({json.dumps(seed)}).forEach(([k, v]) => localStorage.getItem(k) === null && localStorage.setItem(k, v));")
        page = context.new_page()
        page.console = Console(page)
        return page

    yield opener
    for context in contexts:
        context.close()


def _point_at_stack_websocket(context, stack) -> None:
    """The page learns the WebSocket URL from `ui/config.js` (env `WS_URL`, else the page's host
    on `WS_PORT`). If the stack under test serves another port than its socket's, say so and
    answer config.js with the right URL, so the rest of the flow is still tested."""
    with urllib.request.urlopen(f"{stack.rest_url}/ui/config.js", timeout=10) as answer:
        served = answer.read().decode()
    match = re.search(r"Object\.freeze\((\{.*\})\)", served)
    ws_url = json.loads(match.group(1))["wsUrl"] if match else None
    if ws_url and _port(ws_url) == _port(stack.ws_url):
        return
    warnings.warn(f"ui/config.js names {ws_url!r}, the stack's socket is {stack.ws_url!r}: set WS_URL or WS_PORT for the stack")
    body = f"window.BENCH_CONFIG = Object.freeze({json.dumps({'wsUrl': stack.ws_url})});"
    context.route("**/ui/config.js", lambda route: route.fulfill(status=200, content_type="text/javascript", body=body))


def _port(url: str) -> str | None:
    match = re.search(r"://[^/]+:(\d+)", url)
    return match.group(1) if match else None


def shot(page, name: str) -> Path:
    """The whole page at its viewport's width, without the passing toasts."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"ui-{page.viewport_size['width']}-{name}.png"
    dismiss_toasts(page)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)
    return path


def dismiss_toasts(page) -> None:
    """Toasts are transient and dismissible: click each away, as a user would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    buttons = page.get_by_test_id("toast").locator("button")
    while buttons.count():
        try:
            buttons.first.click(timeout=2000)
        except PlaywrightTimeout:  # it left by itself meanwhile
            pass


# Boxes that hold tables: they must not scroll sideways either (a control would hide in them).
_OVERFLOWING = """() => Array.from(document.querySelectorAll('.table-card, .results-wrap, .history-list, .dialog-body'))
  .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
  .map(el => (el.id || el.className) + ': ' + el.scrollWidth + ' > ' + el.clientWidth)"""


def assert_fits(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, f"{what} scrolls sideways at {viewport} px: the document is {width} px wide"
    inner = page.evaluate(_OVERFLOWING)
    assert not inner, f"{what} at {viewport} px: a box scrolls sideways: {inner}"


_REACHABLE = """el => {
  el.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = el.getBoundingClientRect();
  const inside = r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight && r.width > 0;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  const on = hit && (hit === el || el.contains(hit) || hit.contains(el) && hit.tagName === 'LABEL');
  return {connected: el.isConnected, inside, on: !!on, name: el.getAttribute('aria-label') || el.textContent.trim(),
          hit: hit ? hit.tagName + '.' + hit.className + ' ' + (hit.textContent || '').trim().slice(0, 40) : null};
}"""


def assert_clickable(locator, what: str) -> int:
    """Each element: inside the viewport once scrolled to, and the topmost thing at its centre."""
    elements = locator.all()
    assert elements, f"no {what} found"
    for element in elements:
        seen = element.evaluate(_REACHABLE)
        if not seen["connected"]:  # re-rendered between finding and measuring: measure the new one
            seen = element.evaluate(_REACHABLE)
        assert seen["inside"], f"{what} {seen['name']!r} is not inside the viewport"
        assert seen["on"], f"{what} {seen['name']!r} is covered by {seen['hit']}"
    return len(elements)
