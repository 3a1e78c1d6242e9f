"""The web UI in headless Chromium against the local stack (issue 8).

The flow of the issue: register, add nothing, create a schedule on `demo/fast`, see it
listed, toggle it, Run now, watch the notification widget reach 100 %, open History and see
the run with its results, delete the schedule. Field errors from the API are checked on the
way (a short password, a max_tokens over the limit). Screenshots of each screen go to
`test-artifacts/` (gitignored).

Browser: Debian's `/usr/bin/chromium` (package `chromium`) driven by Playwright's Python
package; Playwright's own browser download is never used. Stack: the `local_stack` fixture
(tests/e2e/conftest.py), or an already running stack named by `E2E_REST_URL` (and
`E2E_WS_URL`), e.g. `make run` in another terminal while working on the UI.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path
from types import SimpleNamespace
from urllib.request import urlopen

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
VIEWPORT = {"width": 1280, "height": 860}
RUN_TIMEOUT_MS = 90_000  # trigger → runner → demo provider → saved run → job_completed

pytestmark = pytest.mark.timeout(240)


# --- fixtures ---------------------------------------------------------------------------------


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


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    _point_at_stack_websocket(context, stack)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    yield page
    context.close()


def _point_at_stack_websocket(context, stack) -> None:
    """The page learns the WebSocket URL from `ui/config.js` (env `WS_URL`, else the page's host
    on `WS_PORT`). If the stack under test serves another port than its socket's, say so and
    answer config.js with the right URL, so the rest of the flow is still tested."""
    with urlopen(f"{stack.rest_url}/ui/config.js", timeout=10) as answer:
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


def shot(target, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"ui-{name}.png"
    if hasattr(target, "goto"):  # a page: the whole screen, without passing toasts
        target.evaluate("document.querySelectorAll('[data-testid=toast]').forEach(t => t.remove())")
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path


# --- the flow ---------------------------------------------------------------------------------


def test_schedule_run_and_history_flow(page, stack):
    from playwright.sync_api import expect

    page.goto(f"{stack.rest_url}/")
    expect(page.get_by_test_id("view-auth")).to_be_visible()
    shot(page, "1-sign-in")

    # Register: a too-short password is refused next to the password field.
    email = f"ui-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_test_id("auth-tab-register").click()
    page.fill("#auth-email", email)
    page.fill("#auth-password", "short")
    page.get_by_test_id("auth-submit").click()
    expect(page.locator("#auth-password-error")).to_contain_text(re.compile(r"8|short", re.I))
    expect(page.locator("#auth-password")).to_have_attribute("aria-invalid", "true")
    page.fill("#auth-password", "correct-horse-battery")
    page.get_by_test_id("auth-submit").click()

    expect(page.get_by_test_id("view-schedules")).to_be_visible()
    expect(page.get_by_test_id("schedules-empty")).to_be_visible()
    expect(page.get_by_test_id("account-email")).to_have_text(email)
    assert page.evaluate("localStorage.getItem('bench.token')")
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online", timeout=20_000)

    # New schedule on demo/fast, with the defaults the issue asks for.
    page.get_by_test_id("new-schedule").click()
    dialog = page.get_by_test_id("schedule-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#schedule-max-tokens")).to_have_value("512")
    expect(page.locator("#schedule-temperature")).to_have_value("0.7")
    page.fill("#schedule-name", "Demo speed check")
    dialog.locator('input[value="demo/fast"]').check()
    page.fill("#schedule-prompt", "Explain quantum computing in one paragraph.")
    page.fill("#schedule-interval", "6")
    page.fill("#schedule-max-tokens", "999999")  # over the API's 128,000
    page.get_by_test_id("schedule-submit").click()
    expect(page.locator("#schedule-max-tokens-error")).not_to_be_empty()
    expect(page.locator("#schedule-max-tokens")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#schedule-name-error")).to_be_empty()
    shot(page, "2a-new-schedule-field-error")
    page.fill("#schedule-max-tokens", "512")
    page.get_by_test_id("schedule-submit").click()
    expect(dialog).to_be_hidden()

    row = page.get_by_test_id("schedule-row").filter(has_text="Demo speed check")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("demo/fast")
    expect(row).to_contain_text("Every 6 hours")
    expect(row.get_by_test_id("schedule-last-run")).to_contain_text("Never")
    expect(row.get_by_test_id("schedule-next-run")).to_contain_text("in 6 hours")
    shot(page, "2-scheduling")

    # Toggle: off (paused), then on again; the API agrees each time.
    switch = row.get_by_test_id("schedule-enabled")
    expect(switch).to_be_checked()
    switch.click()
    expect(row.get_by_test_id("schedule-next-run")).to_contain_text("Paused")
    assert _schedules(page, stack)[0]["enabled"] is False
    row.get_by_test_id("schedule-enabled").click()
    expect(row.get_by_test_id("schedule-next-run")).not_to_contain_text("Paused")
    assert _schedules(page, stack)[0]["enabled"] is True

    # Run now: the widget follows the job over the WebSocket to 100 %.
    row.get_by_test_id("schedule-run").click()
    job = page.get_by_test_id("job-item").first
    expect(job).to_be_visible()
    expect(job).to_contain_text("Demo speed check")
    shot(page.get_by_test_id("jobs-widget"), "4a-widget-active")
    expect(job).to_have_attribute("data-status", "done", timeout=RUN_TIMEOUT_MS)
    expect(job.get_by_test_id("job-pct")).to_have_text("100 %")
    expect(page.get_by_test_id("toast").filter(has_text="Benchmark completed")).to_be_visible()
    shot(page.get_by_test_id("jobs-widget"), "4b-widget-done")
    expect(row.get_by_test_id("schedule-last-run")).not_to_contain_text("Never")

    # History: the run, newest first, as a manual trigger of the schedule, with its results.
    page.get_by_test_id("nav-history").click()
    expect(page.get_by_test_id("view-history")).to_be_visible()
    run = page.get_by_test_id("run").first
    expect(run.get_by_test_id("run-source")).to_have_text("Manual trigger")
    expect(run.get_by_test_id("run-schedule")).to_have_text("Demo speed check")
    result = run.get_by_test_id("result-row").filter(has_text="demo/fast")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("ok")
    assert re.fullmatch(r"[\d,.]+", result.get_by_test_id("result-ttft").inner_text().strip())
    assert re.fullmatch(r"[\d,.]+", result.get_by_test_id("result-tps").inner_text().strip())
    expect(page.get_by_test_id("chart-ttft").locator("circle")).to_have_count(1)
    expect(page.get_by_test_id("chart-tps").locator("circle")).to_have_count(1)
    expect(page.get_by_test_id("chart-legend")).to_contain_text("demo/fast")
    page.get_by_test_id("jobs-toggle").click()  # folded, so the screenshot shows the whole run
    expect(page.get_by_test_id("jobs-list")).to_be_hidden()
    shot(page, "3-history")

    # Keys & providers: nothing added, so every provider says "No key".
    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_test_id("provider-row").filter(has_text="demo")).to_have_count(1)
    expect(page.get_by_test_id("key-last4")).to_have_count(0)
    shot(page, "5-keys-and-providers")

    # Delete the schedule, after confirming.
    page.get_by_test_id("nav-schedules").click()
    row = page.get_by_test_id("schedule-row").filter(has_text="Demo speed check")
    row.get_by_test_id("schedule-delete").click()
    expect(page.get_by_test_id("confirm-dialog")).to_be_visible()
    shot(page, "6-delete-confirmation")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("schedule-row")).to_have_count(0)
    expect(page.get_by_test_id("schedules-empty")).to_be_visible()
    assert _schedules(page, stack) == []

    assert page.errors == [], f"JavaScript errors on the page: {page.errors}"


def _schedules(page, stack) -> list[dict]:
    """The API's view, with the page's own token."""
    token = page.evaluate("localStorage.getItem('bench.token')")
    answer = page.request.get(f"{stack.rest_url}/api/schedules", headers={"Authorization": f"Bearer {token}"})
    assert answer.ok, answer.text()
    return answer.json()["schedules"]


def test_stale_token_returns_to_sign_in_on_a_small_screen(page, stack):
    """A token the API refuses (401) sends the user back to sign-in, saying why; the screens
    fit a phone."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{stack.rest_url}/")
    page.evaluate("localStorage.setItem('bench.token', 'not-a-token'); location.hash = '#/schedules'")
    page.reload()
    expect(page.get_by_test_id("view-auth")).to_be_visible()
    expect(page.locator('#auth-form [data-error-for="_form"]')).to_contain_text("sign in again")
    assert page.evaluate("localStorage.getItem('bench.token')") is None

    page.get_by_test_id("auth-tab-register").click()
    page.fill("#auth-email", f"ui-{uuid.uuid4().hex[:10]}@example.com")
    page.fill("#auth-password", "correct-horse-battery")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("view-schedules")).to_be_visible()
    page.get_by_test_id("new-schedule").click()
    expect(page.get_by_test_id("schedule-dialog")).to_be_visible()
    page.get_by_test_id("schedule-submit").click()  # empty: each field says what it needs
    expect(page.locator("#schedule-name-error")).not_to_be_empty()
    expect(page.locator("#schedule-models-error")).not_to_be_empty()
    expect(page.locator("#schedule-prompt-error")).not_to_be_empty()
    shot(page, "7-mobile-new-schedule")
    page.fill("#schedule-name", "Phone check")
    page.locator('#schedule-dialog input[value="demo/fast"]').check()
    page.fill("#schedule-prompt", "Say hello.")
    page.get_by_test_id("schedule-submit").click()
    expect(page.get_by_test_id("schedule-row")).to_have_count(1)
    shot(page, "8-mobile-scheduling")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
    assert page.errors == [], f"JavaScript errors on the page: {page.errors}"
