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

import re
import time
import uuid
from types import SimpleNamespace

import pytest

from tests.e2e.browser import (
    DESKTOP, KEYLESS_MODEL, LONG_MODEL, PHONE, RUN_TIMEOUT_MS, SIZES, Account,
    assert_clickable, assert_fits, call, dismiss_toasts, register, shot, wait_for_job,
)

pytestmark = pytest.mark.timeout(240)


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
    shot(page, "history-run-partial")

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
    shot(page, "history-chart")

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


def test_a_list_redrawn_when_a_job_ends_keeps_the_keyboard_focus(open_page, stack):
    """A run that ends redraws the schedule list (its last run changed): the control the user
    had focused is focused again in the redrawn row, not dropped to the page."""
    from playwright.sync_api import expect

    account = register(stack)
    schedule = call(stack, "POST", "api/schedules", account.token, {"name": "Focus kept", "models": ["demo/fast"], "prompt": "Hi", "interval_hours": 24})["schedule"]
    page = open_page(DESKTOP, account)
    page.goto(f"{stack.rest_url}/#/schedules")
    row = page.locator(f'[data-testid="schedule-row"][data-schedule-id="{schedule["id"]}"]')
    row.get_by_test_id("schedule-edit").focus()
    expect(row.get_by_test_id("schedule-last-run")).to_contain_text("Never")
    old_edit = row.get_by_test_id("schedule-edit").element_handle()

    job = wait_for_job(stack, account.token, call(stack, "POST", f"api/schedules/{schedule['id']}/trigger", account.token)["job_id"])
    assert job["status"] == "done", job
    ran = call(stack, "GET", "api/schedules", account.token)["schedules"][0]["last_run"]
    expect(row.get_by_test_id("schedule-last-run").locator(".when")).to_have_attribute("data-iso", ran, timeout=RUN_TIMEOUT_MS)
    assert not old_edit.evaluate("el => el.isConnected")  # the row was redrawn
    expect(row.get_by_test_id("schedule-edit")).to_be_focused()
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
