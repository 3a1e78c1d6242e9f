"""The Benchmark and Alerts pages in headless Chromium against the local stack (issue 16, items
10 and 12), at 1440×900 and 390×844.

What a user sees and can do: run `demo/fast` and `demo/slow` three times each on demand, follow
it live, and read a per-model summary with a winner per metric (kept when they leave the page
and come back); create an alert rule on `demo/slow` in the dialog (a 422 shown next to its
field), send a test, and, when a scheduled run crosses the threshold, get an "alert fired"
toast and find the event on the Alerts page. Both pages fit a phone with every control
clickable. Screenshots go to `test-artifacts/`. Every test ends with the console check.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.e2e.browser import (
    DESKTOP, KEYLESS_MODEL, PHONE, RUN_TIMEOUT_MS, assert_clickable, assert_fits, call, dismiss_toasts, register, shot, wait_for_job,
)

pytestmark = pytest.mark.timeout(180)

# Loopback (the local stack allows private endpoints) on the discard port: refused at once.
DEAD_WEBHOOK = "http://127.0.0.1:9/alerts"
SHORT = 8  # max_tokens (the demo provider streams its 64 tokens whatever it is asked)


@pytest.fixture(scope="module")
def seeded(stack):
    """One account: a schedule on `demo/slow`, an on-demand run of `demo/fast` and of a model
    without a key (for the phone's results page; short, as the user runs one job at a time),
    and a rule on any failure of any schedule whose webhook nobody answers."""
    account = register(stack)
    schedule = call(stack, "POST", "api/schedules", account.token, {
        "name": "Slow model watch", "models": ["demo/slow"], "prompt": "Count to ten.", "max_tokens": SHORT, "interval_hours": 24,
    })["schedule"]
    job = call(stack, "POST", "api/benchmarks", account.token, {
        "models": ["demo/fast", KEYLESS_MODEL], "prompt": "Count to five.", "max_tokens": SHORT, "runs": 2,
    })
    call(stack, "POST", "api/alerts", account.token, {
        "name": "Any failure", "condition": {"kind": "failure"}, "webhook_url": DEAD_WEBHOOK, "webhook_format": "slack",
    })
    return SimpleNamespace(account=account, schedule=schedule, manual_job=job["job_id"])


def manual_run(stack, seeded) -> str:
    """The seeded on-demand run's id (its job ran while the other tests did)."""
    done = wait_for_job(stack, seeded.account.token, seeded.manual_job)
    assert done["status"] == "done" and done["result_ref"], done
    return done["result_ref"]


def toasted(page, job_id: str) -> None:
    """Wait until the jobs widget has said how the job went (its toast is out): after that no
    toast is due, so none can land on a control being checked."""
    from playwright.sync_api import expect

    expect(page.locator(f'[data-testid="job-item"][data-job-id="{job_id}"][data-outcome]:not([data-outcome=""])')).to_have_count(1)


def test_an_on_demand_run_of_two_models_three_times_shows_each_summary_and_a_winner_per_metric(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(DESKTOP, seeded.account)
    page.goto(f"{stack.rest_url}/#/benchmark")
    expect(page.get_by_test_id("bench-empty")).to_be_visible()
    picker = page.get_by_test_id("bench-model-picker")
    picker.locator('input[value="demo/fast"]').check()
    picker.locator('input[value="demo/slow"]').check()
    expect(page.get_by_test_id("bench-chosen-model")).to_have_count(2)
    expect(page.get_by_test_id("bench-models-count")).to_have_text("2 models chosen")
    page.fill("#bench-prompt", "Count to five.")
    page.fill("#bench-max-tokens", str(SHORT))

    # The API's 422 comes back next to the field it names, in plain words.
    page.fill("#bench-runs", "11")
    page.get_by_test_id("bench-submit").click()
    expect(page.locator("#bench-runs-error")).to_have_text("Must be 10 or less.")
    expect(page.locator("#bench-runs")).to_have_attribute("aria-invalid", "true")
    assert_fits(page, "Benchmark")
    shot(page, "benchmark")
    page.fill("#bench-runs", "3")

    # Live progress with a cancel button, kept while the user looks elsewhere; then the
    # saved run's summary (demo/slow streams for about 4 s a run).
    page.get_by_test_id("bench-submit").click()
    expect(page.locator("#bench-runs-error")).to_be_empty()
    progress = page.get_by_test_id("bench-progress")
    expect(progress.get_by_test_id("bench-live-result").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("bench-cancel")).to_be_visible()
    expect(page.get_by_test_id("bench-submit")).to_be_disabled()
    shot(page, "benchmark-running")
    page.get_by_test_id("nav-alerts").click()
    expect(page.get_by_test_id("view-alerts")).to_be_visible()
    page.get_by_test_id("nav-benchmark").click()
    expect(progress.get_by_test_id("bench-live-result").first).to_be_visible()
    results = page.get_by_test_id("bench-results")
    expect(results).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("bench-progress")).to_be_hidden()
    rows = results.get_by_test_id("bench-summary-row")
    expect(rows).to_have_count(2)
    for model in ("demo/fast", "demo/slow"):
        expect(rows.filter(has_text=model).get_by_test_id("summary-n")).to_have_text("3/3")
    fast = results.locator('[data-testid="bench-summary-row"][data-model="demo/fast"]')
    slow = results.locator('[data-testid="bench-summary-row"][data-model="demo/slow"]')
    expect(fast.get_by_test_id("win-ttft")).to_have_count(1)
    expect(fast.get_by_test_id("win-speed")).to_have_count(1)
    expect(slow.get_by_test_id("win-ttft")).to_have_count(0)
    expect(slow.get_by_test_id("win-speed")).to_have_count(0)
    expect(results.get_by_test_id("win-cost")).to_have_count(2)  # the demo models are free: a tie
    expect(results.get_by_test_id("winner-ttft")).to_contain_text("demo/fast")
    expect(results.get_by_test_id("winner-speed")).to_contain_text("demo/fast")
    expect(results.get_by_test_id("winner-cost")).to_contain_text("a tie")
    run = call(stack, "GET", "api/history?source=manual&limit=1", seeded.account.token)["runs"][0]
    run_id = run["id"]
    assert run_id != manual_run(stack, seeded)
    expect(results.get_by_test_id("bench-history-link")).to_have_attribute("href", f"#/history/{run_id}")
    expect(page.get_by_test_id("bench-submit")).to_be_enabled()

    # The tab keeps its last benchmark when the user looks elsewhere and comes back.
    page.get_by_test_id("nav-history").click()
    expect(page.get_by_test_id("view-history")).to_be_visible()
    page.get_by_test_id("nav-benchmark").click()
    expect(results.get_by_test_id("bench-summary-row")).to_have_count(2)
    toasted(page, run["metadata"]["job_id"])
    dismiss_toasts(page)
    assert_fits(page, "Benchmark results")
    assert_clickable(page.locator("#view-benchmark button:visible, #view-benchmark a.btn"), "benchmark control")
    shot(page, "benchmark-results")
    page.console.check(seeded.account.token)


def test_an_alert_rule_made_in_the_dialog_fires_on_a_scheduled_run_with_a_toast_and_an_event(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(DESKTOP, seeded.account)
    page.goto(f"{stack.rest_url}/#/alerts")
    expect(page.get_by_test_id("alert-row")).to_have_count(1)  # the seeded "Any failure"
    expect(page.get_by_test_id("alert-row").get_by_test_id("alert-condition")).to_have_text("any failure")
    expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online", timeout=20_000)

    page.get_by_test_id("new-alert").click()
    dialog = page.get_by_test_id("alert-dialog")
    expect(dialog).to_be_visible()
    page.fill("#alert-name", "Slow first token")
    page.get_by_test_id("alert-schedule").select_option(label=seeded.schedule["name"])
    page.fill("#alert-model", "demo/slow")
    page.get_by_test_id("alert-kind").select_option("threshold")
    page.get_by_test_id("alert-metric").select_option("ttft_ms")
    page.get_by_test_id("alert-op").select_option("above")

    # A value the API refuses: its 422 next to the field, in plain words.
    page.fill("#alert-value", "-5")
    page.get_by_test_id("alert-submit").click()
    expect(page.locator("#alert-value-error")).to_have_text("Must be 0 or more.")
    expect(page.locator("#alert-value")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#alert-value")).to_be_focused()
    assert_fits(page, "the alert dialog")
    shot(page, "alert-dialog")
    page.fill("#alert-value", "300")
    expect(page.get_by_test_id("alert-cond-summary")).to_have_text("Alerts on TTFT above 300 ms.")
    page.get_by_test_id("alert-submit").click()
    expect(dialog).to_be_hidden()

    # A scheduled run of demo/slow (about 600 ms to its first token) will cross 300 ms.
    job_id = call(stack, "POST", f"api/schedules/{seeded.schedule['id']}/trigger", seeded.account.token)["job_id"]

    # The signing secret, once, with a copy button.
    secret = page.get_by_test_id("alert-secret")
    expect(secret).to_be_visible()
    expect(page.get_by_test_id("alert-secret-value")).to_have_text(re.compile(r"^whsec_\S+"))
    expect(page.locator("#alert-secret-title")).to_be_focused()
    rule = page.get_by_test_id("alert-row").filter(has_text="Slow first token")
    expect(rule.get_by_test_id("alert-condition")).to_have_text("TTFT above 300 ms")
    expect(rule.get_by_test_id("alert-target")).to_have_text(f"{seeded.schedule['name']} · demo/slow")
    expect(rule.get_by_test_id("alert-webhook")).to_have_text("Open tabs only")
    page.get_by_test_id("alert-secret-done").click()
    expect(secret).to_be_hidden()
    expect(page.get_by_test_id("alert-secret-value")).to_be_empty()

    rule.get_by_test_id("alert-test").click()
    expect(rule.get_by_test_id("alert-test-outcome")).to_have_text("Test sent to your open tabs (no webhook set).")

    fired = page.get_by_test_id("toast").filter(has_text="Alert fired: Slow first token")
    expect(fired).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(fired).to_have_attribute("data-kind", "error")
    expect(fired).to_contain_text(re.compile(r"demo/slow: TTFT [\d,]+ ms \(above 300 ms\)"))
    run_id = wait_for_job(stack, seeded.account.token, job_id)["result_ref"]
    expect(fired.locator("a")).to_have_attribute("href", f"#/history/{run_id}")

    event = page.get_by_test_id("alert-event").first
    expect(event.get_by_test_id("event-type")).to_have_text("Fired")
    expect(event.get_by_test_id("event-model")).to_have_text("demo/slow")
    expect(event.get_by_test_id("event-value")).to_contain_text("(above 300 ms)")
    expect(event.get_by_test_id("event-delivery")).to_have_text("Open tabs only")
    expect(event.get_by_test_id("event-run")).to_have_attribute("href", f"#/history/{run_id}")
    expect(rule.get_by_test_id("alert-state")).to_have_text("Firing")
    toasted(page, job_id)
    dismiss_toasts(page)
    assert_fits(page, "Alerts")
    shot(page, "alerts")
    assert_clickable(page.locator('[data-testid="alert-row"] button, [data-testid="alert-row"] input'), "alert rule control")

    # Edit: the dialog holds the rule; a new condition starts the rule over.
    rule.get_by_test_id("alert-edit").click()
    expect(page.locator("#alert-value")).to_have_value("300")
    expect(page.get_by_test_id("alert-schedule")).to_have_value(seeded.schedule["id"])
    page.fill("#alert-value", "250")
    page.get_by_test_id("alert-submit").click()
    expect(dialog).to_be_hidden()
    expect(rule.get_by_test_id("alert-condition")).to_have_text("TTFT above 250 ms")
    expect(rule.get_by_test_id("alert-state")).to_have_text("OK")
    expect(rule.get_by_test_id("alert-edit")).to_be_focused()

    # Delete (confirmed): focus lands on what is still there.
    page.get_by_role("button", name="Delete: Slow first token").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("alert-row")).to_have_count(1)
    expect(page.get_by_test_id("alert-row").get_by_test_id("alert-delete")).to_be_focused()
    page.console.check(seeded.account.token)


def test_benchmark_and_alerts_fit_a_phone_with_every_control_clickable(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(PHONE, seeded.account)
    page.goto(f"{stack.rest_url}/#/benchmark")
    page.get_by_test_id("bench-model-picker").locator('input[value="demo/fast"]').check()
    expect(page.get_by_test_id("bench-chosen-model")).to_have_count(1)
    assert_fits(page, "Benchmark")
    assert_clickable(page.locator("#bench-form button:visible, #bench-form textarea, #bench-form input:not([type=checkbox])"), "benchmark form control")
    shot(page, "benchmark")

    page.goto(f"{stack.rest_url}/#/benchmark/{manual_run(stack, seeded)}")
    results = page.get_by_test_id("bench-results")
    expect(results.get_by_test_id("summary-n")).to_have_text(["2/2", "0/2"])
    keyless = results.locator(f'[data-testid="bench-summary-row"][data-model="{KEYLESS_MODEL}"]')
    expect(keyless).to_contain_text("failed: auth_failed")
    expect(keyless.locator(".win")).to_have_count(0)  # winners only among models that succeeded
    expect(results.get_by_test_id("bench-failure").get_by_test_id("bench-error-type")).to_have_text("auth_failed")
    results.locator("details summary").click()  # every result, stacked on a phone
    expect(results.locator("details tbody tr")).to_have_count(4)
    assert_fits(page, "Benchmark results")
    assert_clickable(results.locator("a.btn, details summary"), "results control")
    shot(page, "benchmark-results")

    page.get_by_test_id("nav-alerts").click()
    rule = page.get_by_test_id("alert-row").filter(has_text="Any failure")
    expect(rule.get_by_test_id("alert-webhook")).to_have_text("127.0.0.1:9 Slack")
    rule.get_by_test_id("alert-test").click()  # the outcome of a delivery nobody answers
    expect(rule.get_by_test_id("alert-test-outcome")).to_contain_text("Test failed: ")
    assert_fits(page, "Alerts")
    assert_clickable(page.locator('[data-testid="alert-row"] button, [data-testid="alert-row"] input, #new-alert'), "alert rule control")
    shot(page, "alerts")

    page.get_by_test_id("new-alert").click()
    page.get_by_test_id("alert-kind").select_option("regression")
    page.get_by_test_id("alert-metric").select_option("output_speed_tps")
    expect(page.get_by_test_id("alert-cond-summary")).to_have_text("Alerts on output speed 20 % worse than the median of the last 5 runs.")
    assert_fits(page, "the alert dialog")
    assert_clickable(page.locator("#alert-form button:visible"), "dialog button")
    shot(page, "alert-dialog")
    page.console.check(seeded.account.token)
