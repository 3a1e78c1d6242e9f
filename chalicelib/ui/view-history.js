/* History: every run newest first, filtered by schedule, model, status, source and dates
 * (`#/history?status=partial&…`: a filtered list is a link); one run on its own stable page
 * (`#/history/<run_id>`) with "Copy link" and "Run again"; two runs side by side
 * (`#/history/compare?a=<run_id>&b=<run_id>`); and the trend of one schedule's models. */
import { $, $all, append, busy, focusFirst, h } from "./dom.js";
import { ApiError, api, path } from "./api.js";
import { fmtCost, fmtDate, fmtNum, plural, whenCell } from "./format.js";
import { confirmDialog } from "./dialogs.js";
import { chartLegend, lineChart, SERIES_COLORS } from "./chart.js";
import { failureText, modelName, runSource, runStatus, sourcePill, statusPill } from "./status.js";
import { ensureSchedules, scheduleName, schedules } from "./schedules.js";
import { reportError, toast } from "./toasts.js";
import { clearErrors, plainMessage, showErrors, showLocalErrors } from "./forms.js";
import { trackStarted } from "./jobs.js";
import { onSessionChange } from "./session.js";
import { apiParams, describeFilters, fillForm, filtersHash, formFilters, hashQuery, isFiltered, readFilters } from "./history-filters.js";
import { renderCompare } from "./history-compare.js";

const PAGE = 20;
const CHART_PAGES = 3; // the chart reads up to 300 of the newest scheduled runs
const EMPTY_FOLLOW = 5; // a filtered page can come back empty with a cursor: read on up to this often
const MAX_PICK = 2;
const state = {
  mode: "list", seq: 0, runs: [], cursor: null, filters: {}, listHash: "#/history",
  chartRuns: [], chartLoaded: false, single: null,
  picked: new Map(), // run id → run, for Compare (at most MAX_PICK)
  focusCompare: false,
  edited: false, // the user changed a filter since the list was asked for (not applied: invalid)
};

export const historyView = {
  title: "History",
  show(runId) {
    if (runId === "compare") return showCompare();
    return runId ? showRun(runId) : showList();
  },
};

function setMode(mode) {
  state.mode = mode;
  $all("#view-history .list-only").forEach((el) => { el.hidden = mode !== "list"; });
  $("#history-back").hidden = mode === "list";
  $("#history-back a").setAttribute("href", state.listHash);
  $("#history-missing").hidden = true;
  $("#history-compare").hidden = mode !== "compare";
  if (mode !== "list") {
    $("#history-list").replaceChildren();
    $("#history-empty").hidden = true;
    $("#history-more").hidden = true;
  }
  renderPicked();
}

// --- the list and its filters -----------------------------------------------------------------

async function showList() {
  const seq = ++state.seq;
  state.filters = readFilters();
  state.listHash = filtersHash(state.filters);
  setMode("list");
  const form = $("#history-filters");
  state.edited = false;
  clearErrors(form);
  await ensureSchedules();
  refillForm(seq);
  $("#history-clear").hidden = !isFiltered(state.filters);
  const chart = state.chartLoaded ? null : loadChartRuns().catch(reportError);
  try {
    await loadPage(seq, true);
  } catch (err) {
    if (seq === state.seq) showFilterError(err);
  }
  if (chart) await chart;
  refillForm(seq);
}

/** The filter form says what the address says, with fresh schedule and model choices; a
 * slow answer never undoes what the user changed meanwhile (an invalid date pair, say). */
function refillForm(seq) {
  if (seq !== state.seq) return;
  fillForm(state.edited ? formFilters() : state.filters, scheduleOptions(), modelSuggestions());
}

/** Read a page of runs for the current filters (more of them with `first` false). A filtered
 * page may hold no run but a cursor (the API bounds what one answer reads): read on a little. */
async function loadPage(seq, first) {
  let runs = [];
  let cursor = first ? null : state.cursor;
  for (let i = 0; i < EMPTY_FOLLOW; i++) {
    const params = apiParams(state.filters);
    params.set("limit", String(PAGE));
    if (cursor) params.set("cursor", cursor);
    const answer = await api("GET", "api/history?" + params.toString());
    runs = runs.concat(answer.runs || []);
    cursor = answer.next_cursor;
    if (runs.length || !cursor) break;
  }
  if (seq !== state.seq) return; // the filters changed meanwhile: a newer answer draws
  state.runs = first ? runs : state.runs.concat(runs);
  state.cursor = cursor;
  renderList(first);
}

/** A filter the API refused: said next to that filter, and the list says why it is empty. */
function showFilterError(err) {
  const form = $("#history-filters");
  state.runs = [];
  state.cursor = null;
  renderList(false, true);
  if (err instanceof ApiError && err.status === 422) {
    showErrors(form, err);
  } else if (err instanceof ApiError && err.status === 404 && state.filters.schedule_id) {
    showLocalErrors(form, [{ field: "schedule_id", message: "This schedule does not exist, and no run of it is left." }]);
  } else {
    reportError(err);
  }
}

/** Refresh after a job ended: the list gains the new run (a run's page stays as it is). */
export function refreshHistory() {
  if (state.mode !== "list") return Promise.resolve();
  state.chartLoaded = false;
  return showList();
}

function applyFilters() {
  const form = $("#history-filters");
  const filters = formFilters();
  if (filters.since && filters.until && filters.until < filters.since) {
    showLocalErrors(form, [{ field: "until", message: "Must be on or after the From date." }]);
    return;
  }
  const hash = filtersHash(filters);
  if (hash !== location.hash) location.hash = hash; // the router shows the list again
}

function clearFilters() {
  if (location.hash !== "#/history") location.hash = "#/history";
  $("#history-schedule").focus();
}

async function loadMore() {
  const button = $("#history-more");
  busy(button, true);
  try {
    await loadPage(state.seq, false);
  } catch (err) {
    reportError(err);
  } finally {
    busy(button, false);
  }
}

/** [id, name] of the schedules to filter by: current names, then deleted ones with runs. */
function scheduleOptions() {
  const found = new Map(schedules().map((s) => [s.id, s.name]));
  state.chartRuns.forEach((run) => {
    const meta = run.metadata || {};
    if (meta.schedule_id && !found.has(meta.schedule_id)) found.set(meta.schedule_id, runTitle(run));
  });
  return Array.from(found);
}

function scheduleLabel(id) {
  const found = scheduleOptions().find(([sid]) => sid === id);
  return found ? found[1] : "";
}

/** Model names to suggest: those of the runs seen and the schedules' `provider/model` names
 * (the filter matches a result's whole name; a bare catalog id would match nothing). */
function modelSuggestions() {
  const names = new Set();
  schedules().forEach((s) => (s.models || []).forEach((m) => { if (m.includes("/")) names.add(m); }));
  state.chartRuns.concat(state.runs).forEach((run) => (run.results || []).forEach((r) => names.add(modelName(r))));
  return Array.from(names).sort();
}

function renderList(expandFirst, refused) {
  const open = new Set($all('.run-toggle[aria-expanded="true"]').map((b) => b.dataset.runId));
  $("#history-list").replaceChildren(...state.runs.map((run, i) => runCard(run, open.has(run.id) || (expandFirst && i === 0), false)));
  $("#history-more").hidden = !state.cursor;
  const parts = describeFilters(state.filters, scheduleLabel);
  const summary = $("#history-summary");
  if (state.runs.length) {
    summary.replaceChildren();
    append(summary, [
      h("span", { "data-testid": "history-count" }, "Showing " + plural(state.runs.length, "run") + (state.cursor ? ", more below" : "")),
      parts.length ? [" · ", h("span", { class: "history-active" }, parts.join(" · "))] : null]);
  } else {
    summary.replaceChildren();
  }
  summary.hidden = !state.runs.length;
  renderEmpty(parts, refused);
  renderPicked();
}

function renderEmpty(parts, refused) {
  const empty = $("#history-empty");
  empty.hidden = state.runs.length > 0;
  if (!empty.hidden && refused) {
    empty.replaceChildren(h("p", {}, h("strong", {}, "No runs shown.")), h("p", { class: "muted" }, "A filter could not be used: see the message next to it."));
  } else if (!empty.hidden && parts.length) {
    empty.replaceChildren();
    append(empty, [
      h("p", {}, h("strong", {}, state.cursor ? "No match among the newest runs searched so far." : "No runs match these filters.")),
      h("ul", { class: "empty-filters", "data-testid": "history-empty-filters" }, parts.map((text) => h("li", {}, text))),
      h("p", {}, h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "history-empty-clear", onclick: clearFilters }, "Clear filters"))]);
  } else if (!empty.hidden) {
    empty.replaceChildren(h("p", {}, h("strong", {}, "No runs yet.")), h("p", { class: "muted" }, "Runs appear here when a schedule runs, you press “Run now” or you start a benchmark."));
  }
}

// --- choosing two runs to compare ---------------------------------------------------------------

function pickBox(run) {
  const checked = state.picked.has(run.id);
  const input = h("input", {
    type: "checkbox", class: "run-pick-box", "data-testid": "run-pick", "data-run-id": run.id, checked,
    disabled: !checked && state.picked.size >= MAX_PICK,
    "aria-label": "Compare: " + runTitle(run) + ", " + fmtDate(run.created_at),
  });
  input.addEventListener("change", () => {
    if (input.checked) state.picked.set(run.id, run);
    else state.picked.delete(run.id);
    renderPicked();
  });
  return h("label", { class: "run-pick", title: "Select to compare" }, input);
}

function renderPicked() {
  const full = state.picked.size >= MAX_PICK;
  $all('#history-list [data-testid="run-pick"]').forEach((box) => {
    box.checked = state.picked.has(box.dataset.runId);
    box.disabled = !box.checked && full;
    box.parentNode.title = box.disabled ? "Two runs are selected: untick one to pick another" : "Select to compare";
  });
  // Always there while the list has two runs (ticking a run never moves the list under the pointer).
  const bar = $("#compare-bar");
  bar.hidden = state.mode !== "list" || (state.runs.length < 2 && state.picked.size === 0);
  bar.classList.toggle("is-active", state.picked.size > 0);
  const names = Array.from(state.picked.values()).map((run) => runTitle(run) + " (" + fmtDate(run.created_at) + ")");
  $("#compare-count").textContent = full
    ? "Compare " + names.join(" and ")
    : state.picked.size
      ? "1 run selected: tick one more to compare"
      : "Tick two runs to compare them side by side.";
  $("#compare-go").disabled = !full;
  $("#compare-clear").hidden = state.picked.size === 0;
}

function goCompare() {
  if (state.picked.size !== MAX_PICK) return;
  const [a, b] = Array.from(state.picked.keys()).sort(); // run ids begin with their time: older first
  state.focusCompare = true;
  location.hash = "#/history/compare?" + new URLSearchParams({ a, b }).toString();
}

function clearPicked() {
  state.picked.clear();
  renderPicked();
  focusFirst($('#history-list [data-testid="run-pick"]'), $("#history-title"));
}

async function showCompare() {
  setMode("compare");
  const box = $("#history-compare");
  const query = hashQuery();
  const ids = [query.get("a"), query.get("b")];
  if (!ids[0] || !ids[1] || ids[0] === ids[1]) {
    box.replaceChildren(emptyCard("Pick two runs to compare.", "Tick two runs in the list, then press Compare."));
    return;
  }
  box.replaceChildren(h("p", { class: "muted" }, "Loading both runs…"));
  await ensureSchedules();
  const load = (id) => api("GET", path("api/history/{}", id)).catch((err) => {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  });
  const [a, b] = await Promise.all(ids.map(load));
  if (!a || !b) {
    const gone = [!a ? "Run A" : null, !b ? "Run B" : null].filter(Boolean).join(" and ");
    box.replaceChildren(emptyCard(gone + (!a && !b ? " do" : " does") + " not exist.", "It may have been deleted. Pick other runs in the list."));
    return;
  }
  box.replaceChildren();
  append(box, renderCompare(a, b, runTitle));
  if (state.focusCompare) focusFirst($("#compare-title"));
  state.focusCompare = false;
}

function emptyCard(title, text) {
  return h("div", { class: "empty card", "data-testid": "compare-missing" },
    h("p", {}, h("strong", {}, title)),
    h("p", { class: "muted" }, text, " ", h("a", { href: state.listHash }, "See the runs"), "."));
}

// --- one run ----------------------------------------------------------------------------------

/** `#/history/<run_id>`: the run alone, open, whatever page of the list it would be on. */
async function showRun(runId) {
  setMode("run");
  await ensureSchedules();
  try {
    state.single = await api("GET", path("api/history/{}", runId));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    $("#history-missing").hidden = false;
    return;
  }
  $("#history-list").replaceChildren(runCard(state.single, true, true));
}

/** The schedule's name now (a renamed schedule shows its new name), else the stored one. */
function runTitle(run) {
  const meta = run.metadata || {};
  if (run.current_schedule_name) return run.current_schedule_name;
  return scheduleName(meta.schedule_id, meta.schedule_name) || (runSource(run).key === "manual" ? "Manual benchmark" : "Benchmark");
}

function runLink(run) {
  return "#/history/" + encodeURIComponent(run.id);
}

/** Model names of a run, each once, in the run's order. */
function runModels(run) {
  return Array.from(new Set((run.results || []).map(modelName)));
}

function runRepeats(run) {
  return Math.max(1, ...(run.results || []).map((r) => r.runs || 1));
}

function runCard(run, expanded, single) {
  const meta = run.metadata || {};
  const results = run.results || [];
  const status = runStatus(run);
  const title = runTitle(run);
  const named = title + ", " + fmtDate(run.created_at);
  const bodyId = "run-body-" + run.id.replace(/[^A-Za-z0-9_-]/g, "");
  const problems = failureText(status);
  const models = runModels(run);
  const repeats = runRepeats(run);
  const summary = problems
    ? h("span", { class: "run-sub tone-text-" + status.tone, "data-testid": "run-failures" }, problems)
    : h("span", { class: "run-sub" }, plural(models.length, "model") + (repeats > 1 ? " × " + plural(repeats, "run") : "") + " · " + models.join(", "));
  let lead;
  if (single) {
    lead = h("h2", { class: "run-heading" },
      h("a", { class: "run-title", href: runLink(run), "data-testid": "run-schedule" }, title),
      summary);
  } else {
    lead = h("button", { type: "button", class: "run-toggle", "aria-expanded": expanded ? "true" : "false", "aria-controls": bodyId, "data-run-id": run.id, "data-testid": "run-toggle" },
      h("span", { class: "chevron", "aria-hidden": "true" }),
      h("span", { class: "run-titles" },
        h("span", { class: "run-title", "data-testid": "run-schedule" }, title),
        summary));
  }
  const head = h("div", { class: "run-head" + (single ? " run-head-single" : "") },
    single ? null : pickBox(run),
    lead,
    h("span", { class: "run-pills" }, statusPill(status), sourcePill(run)),
    h("a", { class: "run-when", href: runLink(run), "data-testid": "run-link", title: "Link to this run" }, whenCell(run.created_at)));
  const againError = h("p", { class: "field-error run-error", role: "alert", "data-testid": "run-again-error" });
  const body = h("div", { class: "run-body", id: bodyId, hidden: !expanded },
    h("div", { class: "run-meta" },
      h("span", {}, "Max tokens ", h("strong", {}, fmtNum(run.max_tokens))),
      h("span", {}, "Temperature ", h("strong", {}, run.temperature)),
      repeats > 1 ? h("span", {}, "Runs per model ", h("strong", {}, repeats)) : null,
      meta.job_id ? h("span", {}, "Job ", h("code", {}, String(meta.job_id).slice(0, 12))) : null),
    h("div", { class: "run-prompt" }, run.prompt),
    resultsTable(results),
    h("div", { class: "run-foot" },
      h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "run-again", "aria-label": "Run again: " + named, onclick: (e) => runAgain(run, e.currentTarget, againError) }, "Run again"),
      h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "run-copy-link", "aria-label": "Copy link: " + named, onclick: () => copyLink(run) }, "Copy link"),
      single ? null : h("a", { class: "btn btn-ghost btn-sm", href: runLink(run), "data-testid": "run-open", "aria-label": "Open run page: " + named }, "Open run page"),
      h("span", { class: "run-foot-gap" }),
      h("button", { type: "button", class: "btn btn-ghost btn-sm btn-danger-text", "data-testid": "run-delete", "aria-label": "Delete run: " + named, onclick: () => deleteRun(run) }, "Delete run")),
    againError);
  if (!single) {
    lead.addEventListener("click", () => {
      const open = lead.getAttribute("aria-expanded") !== "true";
      lead.setAttribute("aria-expanded", open ? "true" : "false");
      body.hidden = !open;
    });
  }
  return h("article", { class: "run tone-edge-" + status.tone, "data-testid": "run", "data-run-id": run.id, "data-status": status.key, "data-source": runSource(run).key }, head, body);
}

const COLUMNS = [
  ["Model", ""], ["Status", ""], ["TTFT (ms)", "num"], ["Output speed (tok/s)", "num"], ["ITL p50 (ms)", "num"],
  ["ITL p99 (ms)", "num"], ["Duration (s)", "num"], ["Tokens/s", "num"], ["Tokens in / out", "num"], ["Cost", "num"],
];

function resultsTable(results) {
  return h("div", { class: "results-wrap" },
    h("table", { class: "table results stackable", "data-testid": "results-table" },
      h("thead", {}, h("tr", {}, COLUMNS.map(([text, cls]) => h("th", { scope: "col", class: cls || null }, text)))),
      h("tbody", {}, results.map(resultRow))));
}

function resultRow(r) {
  const status = r.success
    ? h("span", { class: "pill tone-ok" }, "ok")
    : h("span", { class: "pill tone-failed", "data-testid": "result-error-type" }, r.error_type || "error");
  // a failed result has no measures: its empty cells fold away when the table stacks
  const cellOf = (label, testId, text, title) => h("td", { class: "num" + (text === "—" ? " is-empty" : ""), "data-label": label, "data-testid": testId, title }, text);
  return h("tr", { "data-testid": "result-row", "data-model": modelName(r), "data-success": r.success ? "true" : "false" },
    h("th", { scope: "row", class: "cell-model" }, h("code", {}, modelName(r)),
      (r.runs || 1) > 1 ? h("span", { class: "result-run" }, "run " + r.run + " of " + r.runs) : null,
      !r.success && r.error ? h("div", { class: "err", "data-testid": "result-error" }, r.error) : null),
    h("td", { "data-label": "Status" }, status),
    cellOf("TTFT (ms)", "result-ttft", fmtNum(r.ttft_ms)),
    cellOf("Output speed (tok/s)", "result-speed", fmtNum(r.output_speed_tps, 1)),
    cellOf("ITL p50 (ms)", "result-itl-p50", fmtNum(r.itl_p50_ms, 1)),
    cellOf("ITL p99 (ms)", "result-itl-p99", fmtNum(r.itl_p99_ms, 1)),
    cellOf("Duration (s)", "result-duration", fmtNum(r.total_time_s, 2)),
    cellOf("Tokens/s", "result-tps", fmtNum(r.tokens_per_second, 1)),
    cellOf("Tokens in / out", null, fmtNum(r.input_tokens) + " / " + fmtNum(r.output_tokens)),
    cellOf("Cost", null, fmtCost(r), r.cost_known === false ? "No price known for this model" : null));
}

// --- a run's actions ----------------------------------------------------------------------------

/** The same models, prompt and settings again, as an on-demand benchmark (a manual run's
 * repeats too). The jobs widget follows it and says when it ends, with a link to its run. */
async function runAgain(run, button, errorSlot) {
  const models = runModels(run);
  const body = { models, prompt: run.prompt, max_tokens: run.max_tokens, temperature: run.temperature };
  if (runSource(run).key === "manual") {
    body.runs = runRepeats(run);
    if (run.metadata && run.metadata.warmup === true) body.warmup = true;
  }
  errorSlot.textContent = "";
  busy(button, true);
  try {
    const answer = await api("POST", "api/benchmarks", body);
    trackStarted(answer.job_id, { id: null, name: "Run again: " + runTitle(run) });
    toast("info", "Benchmark started", plural(models.length, "model") + " with the same settings. Follow it under Jobs; a link to its run follows when it ends.");
  } catch (err) {
    if (err && err.status === 401) return;
    errorSlot.textContent = againMessage(err);
    button.focus();
  } finally {
    busy(button, false);
  }
}

function againMessage(err) {
  const detail = err && err.body && err.body.detail;
  if (Array.isArray(detail) && detail.length) {
    return "Could not run again: " + detail.map((p) => (p.field ? p.field.replace(/\.(\d+)$/, (m, i) => " " + (Number(i) + 1)) + ": " : "") + plainMessage(p.message)).join(" ");
  }
  return "Could not run again: " + (err && err.message ? err.message : String(err));
}

async function copyLink(run) {
  const url = location.href.split("#")[0] + runLink(run);
  try {
    await navigator.clipboard.writeText(url);
    toast("ok", "Link copied", url);
  } catch (err) {
    toast("info", "Copy this link", url, { href: runLink(run), label: "Open the run" });
  }
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
    state.picked.delete(run.id);
    if (state.mode === "run") {
      state.single = null;
      location.hash = state.listHash;
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
  state.chartLoaded = true;
  renderChartPicker();
  renderChart();
}

/** Schedule id → name to show: schedules that exist (current names), then those of old runs. */
function chartSchedules() {
  const withRuns = new Set(state.chartRuns.map((run) => (run.metadata || {}).schedule_id));
  return new Map(scheduleOptions().filter(([id]) => withRuns.has(id)));
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

/** What one account saw is not the next one's: ticked runs, the list, the chart. */
function forget() {
  Object.assign(state, { runs: [], cursor: null, filters: {}, listHash: "#/history", chartRuns: [], chartLoaded: false, single: null });
  state.picked.clear();
}

export function wireHistory() {
  onSessionChange(forget);
  const form = $("#history-filters");
  form.addEventListener("input", () => { state.edited = true; });
  form.addEventListener("change", () => { state.edited = true; applyFilters(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); applyFilters(); });
  $("#history-model").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); applyFilters(); }
  });
  $("#history-clear").addEventListener("click", clearFilters);
  $("#history-refresh").addEventListener("click", () => { state.chartLoaded = false; showList().catch(reportError); });
  $("#history-more").addEventListener("click", loadMore);
  $("#chart-schedule").addEventListener("change", renderChart);
  $("#compare-go").addEventListener("click", goCompare);
  $("#compare-clear").addEventListener("click", clearPicked);
}
