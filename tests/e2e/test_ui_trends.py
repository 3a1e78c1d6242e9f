"""Trends and the schedule list's health column, in headless Chromium against the local stack.

One account for the module: a schedule of `demo/fast` and the keyless `openai/gpt-4o` (every
run completes with errors: gpt-4o fails with `auth_failed`) run twelve times with "Run now",
and a schedule that never ran. The runs start within seconds, so the API's hourly buckets
hold them in one point per model; the Trends view's "Each run" points (the runs themselves,
`GET api/history`) draw a point per run, model and chart: 12 points of `demo/fast` on each
of the four charts, and a red ring for each failed `gpt-4o` request. Nothing is made up in the browser: every number shown is
checked against the API's answer.

Screenshots: `trends` and `schedules-health` at 1440×900 and 390×844 (test-artifacts/).
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest

from tests.e2e.browser import (
    DESKTOP, KEYLESS_MODEL, PHONE, assert_clickable, assert_fits, call, dismiss_toasts, register, shot, wait_for_job,
)

pytestmark = pytest.mark.timeout(180)
RUNS = 12


@pytest.fixture(scope="module")
def seeded(stack):
    """The account and its schedules; the runs are started here and waited for by `ready`
    (they run one after another while the browser starts)."""
    account = register(stack)
    watched = call(stack, "POST", "api/schedules", account.token, {
        "name": "Provider watch", "models": ["demo/fast", KEYLESS_MODEL],
        "prompt": "Say hello.", "max_tokens": 24, "interval_hours": 6,
    })["schedule"]
    quiet = call(stack, "POST", "api/schedules", account.token, {
        "name": "Weekly check", "models": ["demo/fast"], "prompt": "Say hello.", "interval_hours": 168,
    })["schedule"]
    jobs = [call(stack, "POST", f"api/schedules/{watched['id']}/trigger", account.token)["job_id"] for _ in range(RUNS)]
    return SimpleNamespace(account=account, watched=watched, quiet=quiet, jobs=jobs, runs=None)


def ready(stack, seeded) -> SimpleNamespace:
    """The seeded runs, finished: newest first, each completed with errors."""
    if seeded.runs is None:
        for job_id in seeded.jobs:
            job = wait_for_job(stack, seeded.account.token, job_id)
            assert job["status"] == "done", job
        runs = call(stack, "GET", f"api/history?schedule_id={seeded.watched['id']}&limit={RUNS}", seeded.account.token)["runs"]
        assert len(runs) == RUNS and all(run["status"] == "partial" for run in runs), runs
        seeded.runs = runs
    return seeded


def _ms(value: float) -> str:
    """As the page shows it: Intl rounds half away from zero (118.5 → 119), Python's format
    half to even (118.5 → 118)."""
    whole = Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{whole:,} ms"


def test_health_shows_a_partial_run_and_leads_to_trends_that_mark_failures_toggle_models_and_show_exact_values(seeded, open_page, stack):
    from playwright.sync_api import expect

    token = seeded.account.token
    page = open_page(DESKTOP, seeded.account)
    check_health_and_open_trends(page, stack, ready(stack, seeded))
    # The range and the schedule are kept in the address.
    page.get_by_test_id("range-24h").check()
    expect(page).to_have_url(re.compile(rf"#/trends\?range=24h&schedule={seeded.watched['id']}$"))
    # Drawn for 24 h (hourly) before anything is read off it: a 7-day chart of runs made within
    # the hour has as many points, and it is replaced when the new answer comes.
    expect(page.locator("#trends-note")).to_contain_text("One point per hour")

    # Hourly (automatic for 24 h): the API's buckets, each number as the API gives it.
    stats = call(stack, "GET", f"api/stats?schedule_id={seeded.watched['id']}&since={seeded.runs[-1]['created_at']}&bucket=hour", token)
    fast = next(m for m in stats["models"] if m["model"] == "demo/fast")
    keyless = next(m for m in stats["models"] if m["model"] == KEYLESS_MODEL)["series"][-1]
    ttft = page.get_by_test_id("trend-ttft")
    expect(ttft.get_by_test_id("trend-point")).to_have_count(len(fast["series"]))
    expect(ttft.get_by_test_id("trend-failure")).to_have_count(len(fast["series"]))  # gpt-4o: every request failed
    plot = ttft.locator(".trend-plot")
    plot.focus()
    page.keyboard.press("End")
    tooltip = ttft.get_by_test_id("trend-tooltip")
    expect(tooltip).to_be_visible()
    latest = fast["series"][-1]
    expect(tooltip.locator('[data-model="demo/fast"] [data-testid="tip-value"]')).to_have_text(_ms(latest["ttft_ms_p50"]))
    expect(tooltip.locator(f'[data-model="{KEYLESS_MODEL}"] [data-testid="tip-failures"]')).to_have_text(f"{keyless['failures']} of {keyless['n']} failed")
    page.keyboard.press("Escape")
    expect(tooltip).to_be_hidden()

    # Each run: a point per run, model and chart: 12 points of demo/fast on every chart.
    page.get_by_test_id("trends-points").select_option("run")
    expect(page).to_have_url(re.compile(r"&points=run$"))
    expect(page.locator("#trends-note")).to_contain_text("One point per run")
    points = page.get_by_test_id("trend-charts").get_by_test_id("trend-point")
    expect(ttft.get_by_test_id("trend-point")).to_have_count(RUNS)
    for chart in ("trend-speed", "trend-itl"):
        expect(page.get_by_test_id(chart).get_by_test_id("trend-point")).to_have_count(RUNS)
    expect(page.get_by_test_id("trend-cost").get_by_test_id("trend-point")).to_have_count(RUNS)
    assert points.count() >= 4 * 12
    expect(ttft.get_by_test_id("trend-failure")).to_have_count(RUNS)

    # The crosshair with the mouse: the point nearest the pointer, its exact values.
    oldest = seeded.runs[-1]
    first_fast = next(r for r in oldest["results"] if r["model"] == "demo/fast")
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.12, box["y"] + box["height"] / 2)
    expect(tooltip).to_be_visible()
    expect(tooltip.locator('[data-model="demo/fast"] [data-testid="tip-value"]')).to_have_text(_ms(first_fast["ttft_ms"]))
    expect(tooltip.locator(f'[data-model="{KEYLESS_MODEL}"] [data-testid="tip-failures"]')).to_have_text("1 of 1 failed")
    # With the keyboard: arrow keys walk the points.
    plot.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    second_fast = next(r for r in seeded.runs[-2]["results"] if r["model"] == "demo/fast")
    expect(tooltip.locator('[data-model="demo/fast"] [data-testid="tip-value"]')).to_have_text(_ms(second_fast["ttft_ms"]))
    page.keyboard.press("Escape")
    # A chart redrawn under the keyboard (the window narrowed) keeps the focus.
    charts = page.get_by_test_id("trend-charts")
    drawn_at = charts.get_attribute("data-width")
    page.set_viewport_size({"width": 1100, "height": 900})
    expect(charts).not_to_have_attribute("data-width", drawn_at)
    expect(ttft.get_by_test_id("trend-plot")).to_be_focused()
    page.set_viewport_size(DESKTOP)
    expect(charts).to_have_attribute("data-width", drawn_at)

    # A model toggled off leaves every chart; its failures stay marked.
    toggle = page.locator('[data-testid="model-toggle"][data-model="demo/fast"]')
    expect(toggle).to_have_attribute("aria-pressed", "true")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator('[data-testid="trend-series"][data-model="demo/fast"]')).to_have_count(0)
    expect(points).to_have_count(0)
    expect(ttft.get_by_test_id("trend-failure")).to_have_count(RUNS)
    toggle.click()
    expect(ttft.get_by_test_id("trend-point")).to_have_count(RUNS)
    expect(toggle).to_be_focused()

    # The text alternative: one row per model.
    summary = page.get_by_test_id("trends-summary")
    fast_row = summary.locator('[data-testid="summary-row"][data-model="demo/fast"]')
    expect(fast_row.locator('[data-label="Requests"]')).to_have_text(str(RUNS))
    expect(fast_row.locator('[data-label="Success"]')).to_have_text("100%")
    expect(summary.locator(f'[data-testid="summary-row"][data-model="{KEYLESS_MODEL}"] [data-label="Success"]')).to_have_text("0%")

    dismiss_toasts(page)
    assert_fits(page, "Trends")
    assert_clickable(page.locator('[data-testid="model-toggle"], [data-testid="trends-range"] input, #trends-schedule, #trends-points'), "Trends control")
    plot.focus()
    page.keyboard.press("End")  # the screenshot shows the crosshair and its values
    expect(tooltip).to_be_visible()
    assert_fits(page, "Trends with a tooltip")
    shot(page, "trends")

    # Reload: the address brings the same view back.
    page.reload()
    expect(page.get_by_test_id("trends-points")).to_have_value("run")
    expect(page.get_by_test_id("range-24h")).to_be_checked()
    expect(ttft.get_by_test_id("trend-point")).to_have_count(RUNS)

    # A custom range: a backwards one is refused next to the dates; an empty one says so.
    page.get_by_test_id("range-custom").check()
    page.get_by_test_id("trends-from").fill("2026-01-10")
    page.get_by_test_id("trends-to").fill("2026-01-09")
    page.get_by_test_id("trends-apply").click()
    expect(page.locator("#trends-to-error")).to_have_text("Must be on or after the start date.")
    page.get_by_test_id("trends-to").fill("2026-01-12")
    page.get_by_test_id("trends-apply").click()
    expect(page.get_by_test_id("trends-empty")).to_be_visible()
    expect(page).to_have_url(re.compile(r"range=custom&from=2026-01-10&to=2026-01-12"))
    page.console.check(token)


def test_health_and_trends_fit_a_phone_and_the_crosshair_answers_the_keyboard(seeded, open_page, stack):
    from playwright.sync_api import expect

    page = open_page(PHONE, seeded.account)
    check_health_and_open_trends(page, stack, ready(stack, seeded))
    assert_fits(page, "Trends")
    assert_clickable(page.locator('[data-testid="model-toggle"], [data-testid="trends-range"] input, #trends-schedule, #trends-points'), "Trends control")
    ttft = page.get_by_test_id("trend-ttft")
    ttft.locator(".trend-plot").focus()
    expect(ttft.get_by_test_id("trend-tooltip")).to_be_visible()
    expect(ttft.get_by_test_id("trend-tooltip").get_by_test_id("tip-failures")).to_have_text(f"{RUNS} of {RUNS} failed")
    assert_fits(page, "Trends with a tooltip")
    shot(page, "trends")  # with the crosshair on the first chart
    page.keyboard.press("Escape")
    expect(ttft.get_by_test_id("trend-tooltip")).to_be_hidden()
    page.console.check(seeded.account.token)


def check_health_and_open_trends(page, stack, seeded) -> None:
    """The schedule list: the partial run's health with its sparkline, the schedule without
    runs; everything fits and is clickable (screenshot `schedules-health`); then the
    sparkline opens Trends for that schedule over 7 days."""
    from playwright.sync_api import expect

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{stack.rest_url}/#/schedules")
    row = page.locator(f'[data-testid="schedule-row"][data-schedule-id="{seeded.watched["id"]}"]')
    health = row.get_by_test_id("schedule-health")
    expect(health).to_have_attribute("data-state", "done")
    # The last run comes with the schedule (`last_result`): only the sparkline is asked for.
    assert not [url for url in asked if "/api/history?" in url and "schedule_id=" in url], asked
    assert [url for url in asked if "/api/stats" in url]
    expect(health.get_by_test_id("run-status")).to_have_attribute("data-status", "partial")
    expect(health.get_by_test_id("run-status")).to_have_text("Completed with errors")
    latest = next(r for r in seeded.runs[0]["results"] if r["model"] == "demo/fast")
    expect(health.get_by_test_id("health-ttft")).to_have_text(_ms(latest["ttft_ms"]))
    expect(health.get_by_test_id("schedule-sparkline")).to_have_attribute("aria-label", re.compile(r"^TTFT p50 over 7 days: demo/fast [\d,]+ ms$"))
    quiet = page.locator(f'[data-testid="schedule-row"][data-schedule-id="{seeded.quiet["id"]}"]')
    expect(quiet.get_by_test_id("health-none")).to_have_text("No runs yet")
    dismiss_toasts(page)
    assert_fits(page, "Scheduling with health")
    controls = assert_clickable(page.locator('[data-testid="schedule-row"] button, [data-testid="schedule-row"] input'), "schedule control")
    assert controls == 2 * 4  # Run now, Edit, Delete and the switch of each row
    shot(page, "schedules-health")

    row.locator("a.spark").click()
    expect(page).to_have_url(re.compile(rf"#/trends\?range=7d&schedule={seeded.watched['id']}$"))
    expect(page.get_by_test_id("trends-schedule")).to_have_value(seeded.watched["id"])
    expect(page.get_by_test_id("trend-ttft").get_by_test_id("trend-failure").first).to_be_visible()
