"""The web UI in headless Chromium against the local stack, at 1440×900 and 390×844.

What a user sees and can do: sign up, create a schedule through the dialog (picker search,
the "no key: will fail" warning, interval presets, plain-language field errors), "Create &
run now", follow the job in the jobs widget to a run that completed with errors, open that
run at its own address, and find every page fitting the screen with no control covered.
Every test also checks the console: no Content-Security-Policy violation, no token.

Screenshots of every page at both sizes go to `test-artifacts/` (gitignored).

Browser: Debian's `/usr/bin/chromium` (package `chromium`) driven by Playwright's Python
package; Playwright's own browser download is never used. One browser for the module, one
context per test. Stack: the `local_stack` fixture (tests/e2e/conftest.py), or an already
running stack named by `E2E_REST_URL` (and `E2E_WS_URL`), e.g. `make run` in another terminal.
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

pytestmark = pytest.mark.timeout(240)


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


@pytest.fixture(scope="module")
def seeded(stack):
    """An account with a schedule whose run completed with errors (one model ok, two without
    a key), a schedule with no run yet, and the partial run's id."""
    account = register(stack)
    mixed = call(stack, "POST", "api/schedules", account.token, {
        "name": "Nightly provider comparison", "models": ["demo/fast", LONG_MODEL, KEYLESS_MODEL],
        "prompt": "Explain quantum computing in one paragraph.", "max_tokens": 64, "interval_hours": 6,
    })["schedule"]
    call(stack, "POST", "api/schedules", account.token, {
        "name": "Demo speed check", "models": ["demo/fast"], "prompt": "Say hello.", "interval_hours": 24,
    })
    job = wait_for_job(stack, account.token, call(stack, "POST", f"api/schedules/{mixed['id']}/trigger", account.token)["job_id"])
    assert job["status"] == "done" and job["result_ref"], job
    return SimpleNamespace(account=account, mixed=mixed, partial_run=job["result_ref"])


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
  return {inside, on: !!on, name: el.getAttribute('aria-label') || el.textContent.trim(),
          hit: hit ? hit.tagName + '.' + hit.className + ' ' + (hit.textContent || '').trim().slice(0, 40) : null};
}"""


def assert_clickable(locator, what: str) -> int:
    """Each element: inside the viewport once scrolled to, and the topmost thing at its centre."""
    elements = locator.all()
    assert elements, f"no {what} found"
    for element in elements:
        seen = element.evaluate(_REACHABLE)
        assert seen["inside"], f"{what} {seen['name']!r} is not inside the viewport"
        assert seen["on"], f"{what} {seen['name']!r} is covered by {seen['hit']}"
    return len(elements)


# --- the journey ---------------------------------------------------------------------------------


def test_a_new_user_creates_and_runs_a_schedule_and_sees_which_model_failed(open_page, stack):
    from playwright.sync_api import expect

    page = open_page(DESKTOP)
    page.goto(f"{stack.rest_url}/")
    expect(page.get_by_test_id("view-auth")).to_be_visible()
    assert_fits(page, "Sign-in")
    shot(page, "sign-in")

    # Register: the API's "too short" comes back next to the password field, in plain words.
    email = f"ui-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_test_id("auth-tab-register").click()
    page.fill("#auth-email", email)
    page.fill("#auth-password", "short")
    page.get_by_test_id("auth-submit").click()
    expect(page.locator("#auth-password-error")).to_have_text("Use at least 8 characters.")
    expect(page.locator("#auth-password")).to_have_attribute("aria-invalid", "true")
    page.fill("#auth-password", "correct-horse-battery")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("view-schedules")).to_be_visible()
    expect(page.get_by_test_id("schedules-empty")).to_be_visible()
    expect(page.get_by_test_id("account-email")).to_have_text(email)
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online", timeout=20_000)
    token = page.evaluate("localStorage.getItem('bench.token')")

    # The dialog: search finds the keyless model, the picker and its chip warn before it fails.
    page.get_by_test_id("new-schedule").click()
    dialog = page.get_by_test_id("schedule-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("schedule-submit").click()  # empty: every field says what it needs
    for field in ("name", "models", "prompt"):
        expect(page.locator(f"#schedule-{field}-error")).not_to_be_empty()
    page.fill("#schedule-name", "Speed check")
    page.get_by_test_id("model-search").fill("gpt-4o")
    expect(dialog.locator('.model-option:not([hidden])')).not_to_have_count(0)
    expect(dialog.locator('.model-option[data-model="demo/fast"]')).to_be_hidden()
    openai = dialog.locator('.model-group[data-provider="openai"]')
    expect(openai.get_by_test_id("picker-nokey")).to_have_text("no key: will fail")
    dialog.locator(f'input[value="{KEYLESS_MODEL}"]').check()
    page.get_by_test_id("model-search").fill("")
    dialog.locator('input[value="demo/fast"]').check()
    chosen = page.get_by_test_id("chosen-model")
    expect(chosen).to_have_count(2)
    expect(page.get_by_test_id("models-count")).to_have_text("2 models chosen")
    expect(chosen.filter(has_text=KEYLESS_MODEL).get_by_test_id("model-nokey")).to_have_text("no key: will fail")
    expect(chosen.filter(has_text="demo/fast").get_by_test_id("model-nokey")).to_have_count(0)
    page.fill("#schedule-prompt", "Explain quantum computing in one paragraph.")
    page.get_by_test_id("preset-6").check()
    expect(page.locator("#schedule-interval")).to_have_value("6")

    # Two bad numbers: both are reported, each next to its field, in plain language.
    page.fill("#schedule-max-tokens", "999999")
    page.fill("#schedule-temperature", "3")
    page.get_by_test_id("schedule-submit").click()
    expect(page.locator("#schedule-max-tokens-error")).to_have_text("Must be 128,000 or less.")
    expect(page.locator("#schedule-temperature-error")).to_have_text("Must be 2 or less.")
    expect(page.locator("#schedule-name-error")).to_be_empty()
    shot(page, "new-schedule-field-errors")
    page.fill("#schedule-max-tokens", "64")
    page.fill("#schedule-temperature", "0.7")

    # Create & run now: the widget stays a badge; the toast says which model failed and why.
    page.get_by_test_id("schedule-submit-run").click()
    expect(dialog).to_be_hidden()
    row = page.get_by_test_id("schedule-row").filter(has_text="Speed check")
    expect(row).to_contain_text("Every 6 hours")
    expect(row.get_by_test_id("schedule-key-warning")).to_contain_text("No key for openai: will fail")
    expect(page.get_by_test_id("jobs-panel")).to_be_hidden()
    warning = page.get_by_test_id("toast").filter(has_text="Completed with errors")
    expect(warning).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(warning).to_contain_text(f"{KEYLESS_MODEL} (auth_failed)")
    expect(page.get_by_test_id("jobs-count")).to_have_text("0")

    # The list shows exactly the next run the API set when the run ended (never a guess).
    schedule = call(stack, "GET", "api/schedules", token)["schedules"][0]
    expect(row.get_by_test_id("schedule-last-run").locator(".when")).to_have_attribute("data-iso", schedule["last_run"])
    expect(row.get_by_test_id("schedule-next-run").locator(".when")).to_have_attribute("data-iso", schedule["next_run"])

    # The widget on demand: the finished job, labelled as partial, links to its run.
    page.get_by_test_id("jobs-toggle").click()
    finished = page.get_by_test_id("jobs-recent").get_by_test_id("job-item").first
    expect(finished.get_by_test_id("job-outcome")).to_have_text("Completed with errors")
    run_id = call(stack, "GET", "api/history", token)["runs"][0]["id"]
    expect(finished.get_by_test_id("job-link")).to_have_attribute("href", f"#/history/{run_id}")
    shot(page, "scheduling-widget-open")
    finished.get_by_test_id("job-link").click()

    # The run's own page: its status, the failed model with its error type and message.
    expect(page).to_have_url(re.compile(rf"#/history/{run_id}$"))
    run = page.get_by_test_id("run")
    expect(run).to_have_count(1)
    expect(run.get_by_test_id("run-status")).to_have_text("Completed with errors")
    expect(run.get_by_test_id("run-source")).to_have_text("Run now")
    expect(run.get_by_test_id("run-failures")).to_have_text(f"Failed: {KEYLESS_MODEL} (auth_failed)")
    failed = run.locator(f'[data-testid="result-row"][data-model="{KEYLESS_MODEL}"]')
    expect(failed.get_by_test_id("result-error-type")).to_have_text("auth_failed")
    expect(failed.get_by_test_id("result-error")).to_contain_text("No API key set for provider 'openai'")
    ok = run.locator('[data-testid="result-row"][data-model="demo/fast"]')
    assert re.fullmatch(r"[\d,.]+", ok.get_by_test_id("result-ttft").inner_text().strip())
    shot(page, "history-run")

    # The list: the failed model is a marked point on each chart, not a dropped one.
    page.get_by_test_id("history-back").click()
    expect(page.get_by_test_id("run").first.get_by_test_id("run-status")).to_have_text("Completed with errors")
    for chart in ("chart-ttft", "chart-tps"):
        expect(page.get_by_test_id(chart).locator("circle")).to_have_count(1)
        expect(page.get_by_test_id(chart).get_by_test_id("chart-failure")).to_have_count(1)
    expect(page.get_by_test_id("chart-legend")).to_contain_text("failed run")
    expect(page.get_by_test_id("chart-ttft").locator("details table")).to_contain_text("failed (auth_failed)")
    page.get_by_test_id("history-source").select_option("manual")  # on-demand runs only: none yet
    expect(page.get_by_test_id("history-empty")).to_be_visible()

    # Delete the schedule; focus lands on something that still exists.
    page.get_by_test_id("nav-schedules").click()
    page.get_by_role("button", name="Delete: Speed check").click()
    expect(page.get_by_test_id("confirm-dialog")).to_be_visible()
    shot(page, "delete-confirmation")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("schedules-empty")).to_be_visible()
    expect(page.locator("#new-schedule")).to_be_focused()
    assert call(stack, "GET", "api/schedules", token)["schedules"] == []
    page.console.check(token)


# --- layout at both sizes ------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_page_fits_the_screen_and_no_control_is_covered(open_page, stack, seeded, size):
    from playwright.sync_api import expect

    page = open_page(SIZES[size], seeded.account, widget_open=True)
    page.goto(f"{stack.rest_url}/#/schedules")
    expect(page.get_by_test_id("schedule-row")).to_have_count(2)
    expect(page.get_by_test_id("jobs-panel")).to_be_visible()  # as the user left it
    expect(page.get_by_test_id("jobs-recent").get_by_test_id("job-outcome").first).to_have_text("Completed with errors")
    row = page.get_by_test_id("schedule-row").filter(has_text="Nightly provider comparison")
    expect(row.locator(f'.chip[data-model="{LONG_MODEL}"] [data-testid="model-nokey"]')).to_be_visible()
    dismiss_toasts(page)
    assert_fits(page, "Scheduling")
    clickable = assert_clickable(page.locator('[data-testid="schedule-row"] button, [data-testid="schedule-row"] input'), "schedule control")
    assert clickable == 2 * 4  # Run now, Edit, Delete and the switch of each row
    shot(page, "scheduling")

    page.get_by_test_id("jobs-toggle").click()  # folded, and remembered
    expect(page.get_by_test_id("jobs-panel")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('bench.jobs.open')") == "0"
    assert_clickable(page.locator('[data-testid="schedule-row"] button'), "schedule button")

    page.get_by_role("button", name="Edit: Nightly provider comparison").click()
    expect(page.get_by_test_id("chosen-model")).to_have_count(3)
    assert_fits(page, "the schedule dialog")
    shot(page, "edit-schedule")
    page.keyboard.press("Escape")

    page.get_by_test_id("nav-history").click()
    run = page.locator(f'[data-testid="run"][data-run-id="{seeded.partial_run}"]')
    expect(run.get_by_test_id("run-status")).to_have_text("Completed with errors")
    assert_clickable(run.get_by_test_id("run-status"), "run status")  # visible on a phone too
    expect(run.get_by_test_id("run-failures")).to_contain_text("auth_failed")
    expect(page.get_by_test_id("chart-ttft").get_by_test_id("chart-failure")).to_have_count(2)
    assert_fits(page, "History")
    shot(page, "history")

    page.goto(f"{stack.rest_url}/#/history/{seeded.partial_run}")
    expect(page.get_by_test_id("run")).to_have_count(1)
    assert_fits(page, "a run's page")
    shot(page, "run-page")
    page.goto(f"{stack.rest_url}/#/history/20990101T000000Z-{'0' * 32}")
    expect(page.get_by_test_id("history-missing")).to_be_visible()

    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_test_id("provider-row").filter(has_text="openai").get_by_test_id("key-missing")).to_be_visible()
    assert_fits(page, "Keys & providers")
    shot(page, "keys-and-providers")
    page.console.check(seeded.account.token)


# --- toasts, keyboard, names ---------------------------------------------------------------------


def test_toasts_stay_three_newest_first_and_only_good_news_leaves_by_itself(open_page, stack):
    from playwright.sync_api import expect

    account = register(stack)
    call(stack, "POST", "api/schedules", account.token, {"name": "Toasty", "models": ["demo/fast"], "prompt": "Hi", "interval_hours": 24})
    page = open_page(PHONE, account)
    page.clock.install()
    page.goto(f"{stack.rest_url}/#/schedules")
    page.clock.pause_at(time.time() + 1)  # the page's timers wait for run_for below
    switch = page.get_by_test_id("schedule-enabled")
    toasts = page.get_by_test_id("toast")
    for expected in ("Schedule paused", "Schedule enabled", "Schedule paused", "Schedule enabled"):
        switch.click()
        expect(toasts.first).to_contain_text(expected)
    expect(toasts).to_have_count(3)

    # An error stays: Run now of a schedule deleted elsewhere.
    schedule_id = page.get_by_test_id("schedule-row").get_attribute("data-schedule-id")
    call(stack, "DELETE", f"api/schedules/{schedule_id}", account.token)
    page.get_by_test_id("schedule-run").click()
    expect(toasts.first).to_have_attribute("data-kind", "error")
    expect(toasts).to_have_count(3)
    page.clock.run_for(60_000)
    expect(toasts).to_have_count(1)
    expect(toasts.first).to_contain_text("Schedule not found")
    page.console.check(account.token)


def test_model_picker_is_one_tab_stop_moved_with_arrow_keys(open_page, stack):
    from playwright.sync_api import expect

    account = register(stack)
    page = open_page(DESKTOP, account)
    page.goto(f"{stack.rest_url}/#/schedules")
    page.get_by_test_id("new-schedule").click()
    options = page.get_by_test_id("model-option")
    expect(options.first).to_be_visible()
    page.get_by_test_id("model-search").focus()
    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.value")
    assert first == options.first.get_attribute("value")
    page.keyboard.press("ArrowDown")
    second = page.evaluate("document.activeElement.value")
    assert second == options.nth(1).get_attribute("value")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("chosen-model")).to_have_text([re.compile(re.escape(second))])
    page.keyboard.press("Tab")  # out of the list in one step
    expect(page.locator("#schedule-prompt")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # back in, on the option last used
    assert page.evaluate("document.activeElement.value") == second
    page.console.check(account.token)


def test_a_renamed_schedule_shows_its_new_name_on_its_old_runs(open_page, stack):
    from playwright.sync_api import expect

    account = register(stack)
    schedule = call(stack, "POST", "api/schedules", account.token, {"name": "Old name", "models": ["demo/fast"], "prompt": "Hi", "interval_hours": 24})["schedule"]
    job = wait_for_job(stack, account.token, call(stack, "POST", f"api/schedules/{schedule['id']}/trigger", account.token)["job_id"])
    call(stack, "PUT", f"api/schedules/{schedule['id']}", account.token, {"name": "New name"})
    page = open_page(DESKTOP, account)
    page.goto(f"{stack.rest_url}/#/history")
    run = page.locator(f'[data-testid="run"][data-run-id="{job["result_ref"]}"]')
    expect(run.get_by_test_id("run-schedule")).to_have_text("New name")
    expect(run.get_by_test_id("run-status")).to_have_text("Completed")
    expect(page.get_by_test_id("chart-schedule").locator("option")).to_have_text(["New name"])
    expect(page.get_by_role("button", name="Delete run: New name", exact=False)).to_have_count(1)
    page.console.check(account.token)


def test_stale_token_returns_to_sign_in_and_never_reaches_the_console(open_page, stack):
    from playwright.sync_api import expect

    stale = Account("gone@example.com", "not-a-token-" + uuid.uuid4().hex)
    page = open_page(PHONE, stale)
    page.goto(f"{stack.rest_url}/#/schedules")
    expect(page.get_by_test_id("view-auth")).to_be_visible()
    expect(page.locator('#auth-form [data-error-for="_form"]')).to_contain_text("sign in again")
    assert page.evaluate("localStorage.getItem('bench.token')") is None
    assert_fits(page, "Sign-in")
    shot(page, "sign-in")
    page.console.check(stale.token)
