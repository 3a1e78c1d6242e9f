"""History in headless Chromium against the local stack, at 1440×900 and 390×844.

What a user finding and judging runs does: narrow the list by schedule, model, status,
source and dates (the filters live in the address, so a filtered list is a link that
survives a reload); open a run at its own address and copy that link; compare two runs
side by side, model by model, with the difference said in words; run a run again with the
same settings and find the new run in the list; read ITL and duration per result. Every
page fits the screen at both sizes with its controls clickable; no console error, no CSP
violation, no token in the console.

One account for the module, seeded through the REST API: a schedule of `demo/fast` and a
keyless `openai/gpt-4o` triggered once (a partial run), and a manual benchmark of
`demo/fast` run twice. Screenshots `history`, `history-run`, `history-compare` at both sizes
go to `test-artifacts/`.
"""
from __future__ import annotations

import re
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.browser import (
    DESKTOP, KEYLESS_MODEL, RUN_TIMEOUT_MS, SIZES,
    assert_clickable, assert_fits, call, dismiss_toasts, register, shot, wait_for_job,
)

pytestmark = pytest.mark.timeout(120)

SCHEDULE = "Mixed providers"


@pytest.fixture(scope="module")
def seeded(stack):
    account = register(stack)
    schedule = call(stack, "POST", "api/schedules", account.token, {
        "name": SCHEDULE, "models": ["demo/fast", KEYLESS_MODEL],
        "prompt": "Count to five.", "max_tokens": 24, "interval_hours": 24,
    })["schedule"]
    triggered = call(stack, "POST", f"api/schedules/{schedule['id']}/trigger", account.token)["job_id"]
    manual = call(stack, "POST", "api/benchmarks", account.token, {
        "models": ["demo/fast"], "prompt": "Name three colours.", "max_tokens": 24, "runs": 2, "warmup": True,
    })["job_id"]
    partial = wait_for_job(stack, account.token, triggered)
    benchmark = wait_for_job(stack, account.token, manual)
    assert partial["status"] == "done" and benchmark["status"] == "done", (partial, benchmark)
    return SimpleNamespace(account=account, schedule=schedule, partial_run=partial["result_ref"], manual_run=benchmark["result_ref"])


def hash_query(page) -> dict:
    fragment = urlparse(page.url).fragment
    return {k: v[0] for k, v in parse_qs(fragment.partition("?")[2]).items()}


def shown_runs(page) -> list[str]:
    return page.get_by_test_id("run").evaluate_all("cards => cards.map(c => c.dataset.runId)")


def test_each_filter_narrows_the_list_and_lives_in_the_address(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(DESKTOP, seeded.account)
    page.goto(f"{stack.rest_url}/#/history")
    runs = page.get_by_test_id("run")
    expect(runs).to_have_count(2)

    # Status: only the run that completed with errors; the address says so, a reload keeps it.
    page.get_by_test_id("history-status").select_option("partial")
    expect(runs).to_have_count(1)
    assert shown_runs(page) == [seeded.partial_run]
    assert hash_query(page) == {"status": "partial"}
    expect(page.get_by_test_id("history-summary")).to_contain_text("Status: Completed with errors")
    page.reload()
    expect(runs).to_have_count(1)
    assert shown_runs(page) == [seeded.partial_run]
    expect(page.get_by_test_id("history-status")).to_have_value("partial")

    # Clear, then source: manual runs only.
    page.get_by_test_id("history-clear").click()
    expect(runs).to_have_count(2)
    assert page.url.endswith("#/history")
    page.get_by_test_id("history-source").select_option("manual")
    expect(runs).to_have_count(1)
    assert shown_runs(page) == [seeded.manual_run]
    assert hash_query(page) == {"source": "manual"}

    # Schedule (by id, shown by name) and model, together with the source: none match, and
    # the empty list says which filters are active.
    page.get_by_test_id("history-schedule").select_option(label=SCHEDULE)
    expect(page.get_by_test_id("history-empty")).to_be_visible()
    expect(page.get_by_test_id("history-empty-filters")).to_contain_text(f"Schedule: {SCHEDULE}")
    expect(page.get_by_test_id("history-empty-filters")).to_contain_text("Source: Manual runs")
    assert hash_query(page) == {"schedule_id": seeded.schedule["id"], "source": "manual"}
    page.get_by_test_id("history-source").select_option("")
    expect(runs).to_have_count(1)
    assert shown_runs(page) == [seeded.partial_run]
    page.get_by_test_id("history-clear").click()
    page.get_by_test_id("history-model").fill(KEYLESS_MODEL)
    page.get_by_test_id("history-model").press("Enter")
    expect(runs).to_have_count(1)
    assert shown_runs(page) == [seeded.partial_run]
    assert hash_query(page) == {"model": KEYLESS_MODEL}

    # Dates: from today keeps both runs; from tomorrow none; "until" before "from" is said
    # next to the field, in plain words.
    page.get_by_test_id("history-clear").click()
    today = page.evaluate("new Date().toLocaleDateString('en-CA')")
    tomorrow = page.evaluate("(() => { const d = new Date(); d.setDate(d.getDate() + 1); return d.toLocaleDateString('en-CA'); })()")
    page.get_by_test_id("history-since").fill(today)
    page.get_by_test_id("history-until").fill(today)
    expect(runs).to_have_count(2)
    assert hash_query(page) == {"since": today, "until": today}
    page.get_by_test_id("history-since").fill(tomorrow)
    expect(page.locator("#history-until-error")).to_have_text("Must be on or after the From date.")
    page.get_by_test_id("history-until").fill("")
    expect(page.get_by_test_id("history-empty")).to_be_visible()
    expect(page.get_by_test_id("history-empty-filters")).to_contain_text("From ")
    page.get_by_test_id("history-empty-clear").click()
    expect(runs).to_have_count(2)

    # A link with a filter the API refuses: the reason next to that filter, in plain words.
    page.goto(f"{stack.rest_url}/#/history?since=yesterday")
    expect(page.locator("#history-since-error")).to_have_text(re.compile(r"^Must be an ISO-8601 time"))
    expect(page.get_by_test_id("history-empty")).to_contain_text("A filter could not be used")
    page.goto(f"{stack.rest_url}/#/history?schedule_id=no-such-schedule")
    expect(page.locator("#history-schedule-error")).to_have_text("This schedule does not exist, and no run of it is left.")
    page.console.check(seeded.account.token)


def test_a_slow_list_answer_never_undoes_a_filter_changed_meanwhile(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(DESKTOP, seeded.account)
    page.goto(f"{stack.rest_url}/#/history")
    expect(page.get_by_test_id("run")).to_have_count(2)
    today = page.evaluate("new Date().toLocaleDateString('en-CA')")
    yesterday = page.evaluate("(() => { const d = new Date(); d.setDate(d.getDate() - 1); return d.toLocaleDateString('en-CA'); })()")

    # The list for "from today" is asked for and held; meanwhile the user picks an "until"
    # before it, which the page refuses beside the field without asking the API.
    held: list = []
    listed = re.compile(r"/api/history\?")
    page.route(listed, lambda route: held.append(route))
    page.get_by_test_id("history-since").fill(today)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the filtered list was never asked for"
    page.get_by_test_id("history-until").fill(yesterday)
    expect(page.locator("#history-until-error")).to_have_text("Must be on or after the From date.")

    # The held answer arrives: the list is drawn, and the user's "until" and its error stay.
    for route in held:
        route.continue_()
    page.unroute(listed)
    expect(page.get_by_test_id("run")).to_have_count(2)
    expect(page.get_by_test_id("history-refresh")).to_be_enabled()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("history-until")).to_have_value(yesterday)
    expect(page.locator("#history-until-error")).to_have_text("Must be on or after the From date.")
    page.console.check(seeded.account.token)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_run_page_and_two_runs_compared_fit_the_screen(open_page, stack, seeded, size):
    from playwright.sync_api import expect

    page = open_page(SIZES[size], seeded.account)
    page.goto(f"{stack.rest_url}/#/history")
    runs = page.get_by_test_id("run")
    expect(runs).to_have_count(2)
    expect(page.get_by_test_id("chart-ttft").get_by_test_id("chart-failure")).to_have_count(1)
    dismiss_toasts(page)
    assert_fits(page, "History")
    assert_clickable(page.locator("#history-filters select, #history-filters input, [data-testid=run-pick], [data-testid=run-toggle]"), "History control")
    assert_clickable(runs.first.locator(".run-foot button, .run-foot a"), "run action")

    # Tick both runs (two at most), then Compare.
    for run_id in (seeded.partial_run, seeded.manual_run):
        page.locator(f'[data-testid="run-pick"][data-run-id="{run_id}"]').check()
    expect(page.get_by_test_id("compare-count")).to_contain_text("Compare")
    assert_clickable(page.locator("#compare-bar button"), "compare button")
    assert_fits(page, "History with two runs ticked")
    shot(page, "history")
    page.get_by_test_id("compare-go").click()
    query = hash_query(page)
    assert sorted([query["a"], query["b"]]) == sorted([seeded.partial_run, seeded.manual_run])
    compare = page.get_by_test_id("history-compare")
    expect(compare.get_by_test_id("compare-run")).to_have_count(2)
    fast = compare.locator('[data-testid="compare-model"][data-model="demo/fast"]')
    expect(fast.get_by_test_id("compare-row")).to_have_count(6)
    ttft = fast.locator('[data-testid="compare-row"][data-metric="ttft_ms"]')
    expect(ttft.get_by_test_id("compare-a")).to_have_text(re.compile(r"^[\d,]+ ms$"))
    expect(ttft.get_by_test_id("compare-b")).to_have_text(re.compile(r"^[\d,]+ ms$"))
    expect(ttft.get_by_test_id("compare-diff")).to_have_text(re.compile(r"(Better|Worse|Same)"))
    expect(compare.get_by_test_id("compare-only")).to_contain_text(f"Only in run A: {KEYLESS_MODEL}")
    expect(compare.get_by_test_id("compare-settings")).to_contain_text("differ in their prompts")
    expect(page.locator("#compare-title")).to_be_focused()
    assert_fits(page, "Compare")
    assert_clickable(compare.get_by_test_id("compare-run-link"), "run link")
    shot(page, "history-compare")

    # A run's own page (reload works): ITL and duration per result, its actions reachable.
    page.goto(f"{stack.rest_url}/#/history/{seeded.manual_run}")
    run = page.get_by_test_id("run")
    expect(run).to_have_count(1)
    expect(run.get_by_test_id("run-schedule")).to_have_attribute("href", f"#/history/{seeded.manual_run}")
    rows = run.get_by_test_id("result-row")
    expect(rows).to_have_count(2)
    for test_id in ("result-itl-p50", "result-itl-p99", "result-duration"):
        expect(rows.first.get_by_test_id(test_id)).to_have_text(re.compile(r"^[\d,.]+$"))
    assert_fits(page, "a run's page")
    assert_clickable(run.locator(".run-foot button"), "run action")
    shot(page, "history-run")
    page.get_by_test_id("history-back").click()
    expect(runs).to_have_count(2)
    page.console.check(seeded.account.token)


def test_run_again_repeats_the_settings_and_the_new_run_joins_the_list(open_page, stack, seeded):
    from playwright.sync_api import expect

    page = open_page(DESKTOP, seeded.account)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{stack.rest_url}/#/history/{seeded.manual_run}")
    run = page.get_by_test_id("run")
    expect(run).to_have_count(1)
    run.get_by_test_id("run-copy-link").click()
    expect(page.get_by_test_id("toast").first).to_contain_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()").endswith(f"/#/history/{seeded.manual_run}")

    run.get_by_test_id("run-again").click()
    expect(page.get_by_test_id("toast").first).to_contain_text("Benchmark started")
    done = page.get_by_test_id("toast").filter(has_text="Benchmark completed")
    expect(done).to_be_visible(timeout=RUN_TIMEOUT_MS)
    link = done.get_by_role("link", name="View run")
    new_id = link.get_attribute("href").rsplit("/", 1)[-1]
    assert new_id != seeded.manual_run
    link.click()
    expect(page).to_have_url(re.compile(rf"#/history/{re.escape(new_id)}$"))
    expect(run).to_have_attribute("data-run-id", new_id)
    expect(run.get_by_test_id("run-source")).to_have_text("Manual")
    expect(run.get_by_test_id("result-row")).to_have_count(2)  # demo/fast, twice, as before
    again = call(stack, "GET", f"api/history/{new_id}", seeded.account.token)
    before = call(stack, "GET", f"api/history/{seeded.manual_run}", seeded.account.token)
    assert (again["prompt"], again["max_tokens"], again["temperature"]) == (before["prompt"], before["max_tokens"], before["temperature"])
    assert (again["metadata"]["runs"], again["metadata"]["warmup"]) == (2, True)  # repeated as it ran

    page.get_by_test_id("history-back").click()
    expect(page.get_by_test_id("run")).to_have_count(3)
    assert shown_runs(page)[0] == new_id

    # Two runs at most for Compare: once two are ticked, the third waits.
    picks = page.get_by_test_id("run-pick")
    picks.nth(0).check()
    picks.nth(1).check()
    expect(picks.nth(2)).to_be_disabled()
    page.get_by_test_id("compare-clear").click()
    expect(picks.nth(2)).to_be_enabled()
    expect(page.get_by_test_id("compare-count")).to_have_text("Tick two runs to compare them side by side.")
    expect(page.get_by_test_id("compare-go")).to_be_disabled()
    page.console.check(seeded.account.token)
