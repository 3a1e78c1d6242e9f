/* History: every run newest first (`#/history`), one run on its own stable page
 * (`#/history/<run_id>`), and the trend of one schedule's models. */
import { $, $all, busy, focusFirst, h } from "./dom.js";
import { ApiError, api, path } from "./api.js";
import { fmtCost, fmtDate, fmtNum, plural, whenCell } from "./format.js";
import { confirmDialog } from "./dialogs.js";
import { chartLegend, lineChart, SERIES_COLORS } from "./chart.js";
import { failureText, modelName, runSource, runStatus, sourcePill, statusPill } from "./status.js";
import { ensureSchedules, scheduleName, schedules } from "./schedules.js";
import { reportError, toast } from "./toasts.js";

const PAGE = 20;
const CHART_PAGES = 3; // the chart reads up to 300 of the newest scheduled runs
const state = { runs: [], cursor: null, chartRuns: [], single: null };

export const historyView = {
  title: "History",
  show(runId) {
    return runId ? showRun(runId) : showList();
  },
};

function setMode(single) {
  $all("#view-history .list-only").forEach((el) => { el.hidden = single; });
  $("#history-back").hidden = !single;
  $("#history-missing").hidden = true;
}

async function showList() {
  setMode(false);
  await ensureSchedules();
  const answer = await api("GET", listQuery({ limit: PAGE }));
  state.runs = answer.runs || [];
  state.cursor = answer.next_cursor;
  renderList(true);
  await loadChartRuns();
}

/** `#/history/<run_id>`: the run alone, open, whatever page of the list it would be on. */
async function showRun(runId) {
  setMode(true);
  $("#history-list").replaceChildren();
  $("#history-empty").hidden = true;
  $("#history-more").hidden = true;
  await ensureSchedules();
  try {
    state.single = await api("GET", path("api/history/{}", runId));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    $("#history-missing").hidden = false;
    return;
  }
  $("#history-list").replaceChildren(runCard(state.single, true));
}

/** Refresh after a job ended: the list gains the new run (the single-run page stays as is). */
export function refreshHistory() {
  if (!$("#history-back").hidden) return Promise.resolve();
  return showList();
}

function listQuery(extra) {
  const params = new URLSearchParams(extra);
  const source = $("#history-source").value;
  if (source) params.set("source", source);
  return "api/history?" + params.toString();
}

async function loadMore() {
  const button = $("#history-more");
  busy(button, true);
  try {
    const answer = await api("GET", listQuery({ limit: PAGE, cursor: state.cursor }));
    state.runs = state.runs.concat(answer.runs || []);
    state.cursor = answer.next_cursor;
    renderList(false);
  } catch (err) {
    reportError(err);
  } finally {
    busy(button, false);
  }
}

function renderList(expandFirst) {
  const open = new Set($all('.run-toggle[aria-expanded="true"]').map((b) => b.dataset.runId));
  $("#history-list").replaceChildren(...state.runs.map((run, i) => runCard(run, open.has(run.id) || (expandFirst && i === 0))));
  $("#history-empty").hidden = state.runs.length > 0;
  $("#history-more").hidden = !state.cursor;
}

/** The schedule's name now (a renamed schedule shows its new name), else the stored one. */
function runTitle(run) {
  const meta = run.metadata || {};
  if (run.schedule_name) return run.schedule_name;
  return scheduleName(meta.schedule_id, meta.schedule_name) || (runSource(run).key === "manual" ? "Manual benchmark" : "Benchmark");
}

function runCard(run, expanded) {
  const meta = run.metadata || {};
  const results = run.results || [];
  const status = runStatus(run);
  const bodyId = "run-body-" + run.id.replace(/[^A-Za-z0-9_-]/g, "");
  const problems = failureText(status);
  const summary = problems
    ? h("span", { class: "run-sub tone-text-" + status.tone, "data-testid": "run-failures" }, problems)
    : h("span", { class: "run-sub" }, plural(results.length, "model") + " · " + results.map(modelName).join(", "));
  const toggle = h("button", { type: "button", class: "run-toggle", "aria-expanded": expanded ? "true" : "false", "aria-controls": bodyId, "data-run-id": run.id, "data-testid": "run-toggle" },
    h("span", { class: "chevron", "aria-hidden": "true" }),
    h("span", { class: "run-titles" },
      h("span", { class: "run-title", "data-testid": "run-schedule" }, runTitle(run)),
      summary));
  const head = h("div", { class: "run-head" },
    toggle,
    h("span", { class: "run-pills" }, statusPill(status), sourcePill(run)),
    h("a", { class: "run-when", href: "#/history/" + encodeURIComponent(run.id), "data-testid": "run-link", title: "Link to this run" }, whenCell(run.created_at)));
  const body = h("div", { class: "run-body", id: bodyId, hidden: !expanded },
    h("div", { class: "run-meta" },
      h("span", {}, "Max tokens ", h("strong", {}, fmtNum(run.max_tokens))),
      h("span", {}, "Temperature ", h("strong", {}, run.temperature)),
      meta.job_id ? h("span", {}, "Job ", h("code", {}, String(meta.job_id).slice(0, 12))) : null),
    h("div", { class: "run-prompt" }, run.prompt),
    resultsTable(results),
    h("div", { class: "run-foot" },
      h("button", { type: "button", class: "btn btn-ghost btn-sm btn-danger-text", "data-testid": "run-delete", "aria-label": "Delete run: " + runTitle(run) + ", " + fmtDate(run.created_at), onclick: () => deleteRun(run) }, "Delete run")));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    body.hidden = !open;
  });
  return h("article", { class: "run tone-edge-" + status.tone, "data-testid": "run", "data-run-id": run.id, "data-status": status.key }, head, body);
}

function resultsTable(results) {
  const columns = [["Model", ""], ["Status", ""], ["TTFT (ms)", "num"], ["Tokens/s", "num"], ["Output speed (tok/s)", "num"], ["Tokens in / out", "num"], ["Cost", "num"]];
  return h("div", { class: "results-wrap" },
    h("table", { class: "table results stackable", "data-testid": "results-table" },
      h("thead", {}, h("tr", {}, columns.map(([text, cls]) => h("th", { scope: "col", class: cls || null }, text)))),
      h("tbody", {}, results.map(resultRow))));
}

function resultRow(r) {
  const status = r.success
    ? h("span", { class: "pill tone-ok" }, "ok")
    : h("span", { class: "pill tone-failed", "data-testid": "result-error-type" }, r.error_type || "error");
  return h("tr", { "data-testid": "result-row", "data-model": modelName(r), "data-success": r.success ? "true" : "false" },
    h("th", { scope: "row", class: "cell-model" }, h("code", {}, modelName(r)),
      !r.success && r.error ? h("div", { class: "err", "data-testid": "result-error" }, r.error) : null),
    h("td", { "data-label": "Status" }, status),
    h("td", { class: "num", "data-label": "TTFT (ms)", "data-testid": "result-ttft" }, fmtNum(r.ttft_ms)),
    h("td", { class: "num", "data-label": "Tokens/s", "data-testid": "result-tps" }, fmtNum(r.tokens_per_second, 1)),
    h("td", { class: "num", "data-label": "Output speed (tok/s)" }, fmtNum(r.output_speed_tps, 1)),
    h("td", { class: "num", "data-label": "Tokens in / out" }, fmtNum(r.input_tokens) + " / " + fmtNum(r.output_tokens)),
    h("td", { class: "num", "data-label": "Cost", title: r.cost_known === false ? "No price known for this model" : null }, fmtCost(r)));
}

async function deleteRun(run) {
  const cards = $all('#history-list [data-testid="run"]');
  const at = cards.findIndex((card) => card.dataset.runId === run.id);
  const ok = await confirmDialog("Delete this run?", "The run from " + fmtDate(run.created_at) + " and its results are removed for good.", "Delete");
  if (!ok) return;
  try {
    await api("DELETE", path("api/history/{}", run.id));
    toast("ok", "Run deleted");
    state.chartRuns = state.chartRuns.filter((r) => r.id !== run.id);
    if (state.single && state.single.id === run.id) {
      state.single = null;
      location.hash = "#/history";
      return;
    }
    state.runs = state.runs.filter((r) => r.id !== run.id);
    renderList(false);
    renderChart();
    const left = $all('#history-list [data-testid="run-toggle"]');
    focusFirst(left[at], left[at - 1], $("#history-title"));
  } catch (err) {
    reportError(err);
  }
}

// --- the trend chart: one schedule's models over time, failures marked -----------------------

async function loadChartRuns() {
  let runs = [];
  let cursor = null;
  for (let page = 0; page < CHART_PAGES; page++) {
    const params = { limit: 100, source: "schedule" };
    if (cursor) params.cursor = cursor;
    const answer = await api("GET", "api/history?" + new URLSearchParams(params).toString());
    runs = runs.concat(answer.runs || []);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  state.chartRuns = runs;
  renderChartPicker();
  renderChart();
}

/** Schedule id → name to show: schedules that exist (current names), then those of old runs. */
function chartSchedules() {
  const found = new Map(schedules().map((s) => [s.id, s.name]));
  state.chartRuns.forEach((run) => {
    const meta = run.metadata || {};
    if (meta.schedule_id && !found.has(meta.schedule_id)) found.set(meta.schedule_id, runTitle(run));
  });
  const withRuns = new Set(state.chartRuns.map((run) => (run.metadata || {}).schedule_id));
  return new Map(Array.from(found).filter(([id]) => withRuns.has(id)));
}

function renderChartPicker() {
  const select = $("#chart-schedule");
  const previous = select.value;
  const options = chartSchedules();
  select.replaceChildren(...Array.from(options).map(([id, name]) => h("option", { value: id }, name)));
  if (previous && options.has(previous)) select.value = previous;
  select.disabled = options.size === 0;
}

function chartSeries(scheduleId) {
  const byModel = new Map();
  state.chartRuns.slice().reverse().forEach((run) => {
    if ((run.metadata || {}).schedule_id !== scheduleId) return;
    const t = new Date(run.created_at).getTime();
    (run.results || []).forEach((r) => {
      const name = modelName(r);
      if (!byModel.has(name)) byModel.set(name, []);
      byModel.get(name).push({ t, failed: !r.success, note: r.error_type, ttft: r.ttft_ms, tps: r.tokens_per_second });
    });
  });
  return Array.from(byModel).map(([name, points], i) => ({ name, color: SERIES_COLORS[i % SERIES_COLORS.length], points }));
}

function renderChart() {
  const box = $("#charts");
  const scheduleId = $("#chart-schedule").value;
  const series = scheduleId ? chartSeries(scheduleId) : [];
  if (!series.length) {
    box.replaceChildren(h("p", { class: "chart-empty" }, "Charts appear once a schedule has run."));
    return;
  }
  const of = (field) => series.map((s) => ({ ...s, points: s.points.map((p) => ({ t: p.t, failed: p.failed, note: p.note, value: p[field] })) }));
  box.replaceChildren(
    lineChart({ title: "Time to first token (ms)", series: of("ttft"), digits: 0, testId: "chart-ttft" }),
    lineChart({ title: "Tokens per second", series: of("tps"), digits: 1, testId: "chart-tps" }),
    chartLegend(series));
}

export function wireHistory() {
  $("#history-source").addEventListener("change", () => showList().catch(reportError));
  $("#history-refresh").addEventListener("click", () => showList().catch(reportError));
  $("#history-more").addEventListener("click", loadMore);
  $("#chart-schedule").addEventListener("change", renderChart);
}
