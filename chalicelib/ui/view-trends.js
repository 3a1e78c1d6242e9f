/* Trends (`#/trends?range=7d&schedule=<id>&points=hour`): statistics over time from
 * `GET api/stats`, one chart per metric (p50 line, p10–p90 band, failures ringed in red),
 * per-model toggles shared by every chart, and a summary table per model (the charts' text
 * alternative). "Each run" asks the API for `bucket=run`, one point per run, for ranges whose
 * hours hold several runs. The address keeps the choice; the page reads it back.
 */
import { $, $all, h, replaceRows } from "./dom.js";
import { api } from "./api.js";
import { fmtNum, isNum, plural } from "./format.js";
import { plainMessage, problemsOf } from "./forms.js";
import { SERIES_COLORS } from "./chart.js";
import { loadSchedules, schedules } from "./schedules.js";
import { METRICS, fmtMetric, fmtMoney, fromStats } from "./stats.js";
import { trendChart, whenLabel } from "./trend-chart.js";

const DAY = 24 * 3600 * 1000;
const RANGES = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
const POINTS = {
  auto: "Automatic",
  hour: "Hourly",
  day: "Daily",
  run: "Each run",
};

let wired = false;
let visited = false;
let state = { range: "7d", from: "", to: "", schedule: "", points: "auto" };
let loadSeq = 0;
let models = [];
let bucket = "hour";
const hidden = new Set(); // model names toggled off, kept while the page is open

export const trendsView = {
  title: "Trends",
  async show() {
    wire();
    // The tab's plain "#/trends" brings back the last choice; an address with one sets it.
    if (location.hash.includes("?") || !visited) state = readState();
    visited = true;
    writeState();
    await loadSchedules().catch(() => null);
    fillControls();
    await load();
  },
};

// --- the address --------------------------------------------------------------------------------

function readState() {
  const query = new URLSearchParams((location.hash.split("?")[1] || ""));
  const range = query.get("range");
  return {
    range: range in RANGES || range === "custom" ? range : "7d",
    from: /^\d{4}-\d{2}-\d{2}$/.test(query.get("from") || "") ? query.get("from") : "",
    to: /^\d{4}-\d{2}-\d{2}$/.test(query.get("to") || "") ? query.get("to") : "",
    schedule: query.get("schedule") || "",
    points: query.get("points") in POINTS ? query.get("points") : "auto",
  };
}

function writeState() {
  const query = new URLSearchParams({ range: state.range });
  if (state.range === "custom") { query.set("from", state.from); query.set("to", state.to); }
  if (state.schedule) query.set("schedule", state.schedule);
  if (state.points !== "auto") query.set("points", state.points);
  history.replaceState(null, "", "#/trends?" + query.toString());
}

/** [since, until) as ISO times; custom dates are whole local days, `to` included. */
function rangeOf(s) {
  if (s.range !== "custom") {
    const until = Date.now();
    return { since: new Date(until - RANGES[s.range]).toISOString(), until: new Date(until).toISOString() };
  }
  const problems = [];
  if (!s.from) problems.push({ field: "from", message: "Choose a start date." });
  if (!s.to) problems.push({ field: "to", message: "Choose an end date." });
  if (problems.length) return { problems };
  const since = new Date(s.from + "T00:00:00");
  const until = new Date(s.to + "T00:00:00");
  until.setDate(until.getDate() + 1);
  if (until <= since) return { problems: [{ field: "to", message: "Must be on or after the start date." }] };
  return { since: since.toISOString(), until: new Date(Math.min(until.getTime(), Date.now() + DAY)).toISOString() };
}

// --- controls -----------------------------------------------------------------------------------

function wire() {
  if (wired) return;
  wired = true;
  $all('input[name="trends-range"]').forEach((radio) => radio.addEventListener("change", () => {
    state.range = radio.value;
    if (state.range === "custom" && !(state.from && state.to)) {
      const today = new Date();
      state.to = isoDate(today);
      state.from = isoDate(new Date(today.getTime() - 6 * DAY));
    }
    fillControls();
    writeState();
    if (state.range === "custom") $("#trends-from").focus();
    load();
  }));
  $("#trends-custom").addEventListener("submit", (event) => {
    event.preventDefault();
    state.from = $("#trends-from").value;
    state.to = $("#trends-to").value;
    writeState();
    load();
  });
  $("#trends-schedule").addEventListener("change", (event) => {
    state.schedule = event.target.value;
    writeState();
    load();
  });
  $("#trends-points").addEventListener("change", (event) => {
    state.points = event.target.value;
    writeState();
    load();
  });
  $("#trends-retry").addEventListener("click", () => load());
}

function fillControls() {
  $all('input[name="trends-range"]').forEach((radio) => { radio.checked = radio.value === state.range; });
  $("#trends-custom").hidden = state.range !== "custom";
  $("#trends-from").value = state.from;
  $("#trends-to").value = state.to;
  const select = $("#trends-schedule");
  const list = schedules();
  const options = [h("option", { value: "" }, "All schedules"), ...list.map((s) => h("option", { value: s.id }, s.name))];
  if (state.schedule && !list.some((s) => s.id === state.schedule)) options.push(h("option", { value: state.schedule }, "A deleted schedule"));
  select.replaceChildren(...options);
  select.value = state.schedule;
  $("#trends-points").value = state.points;
}

function isoDate(date) {
  return date.getFullYear() + "-" + String(date.getMonth() + 1).padStart(2, "0") + "-" + String(date.getDate()).padStart(2, "0");
}

// --- loading ------------------------------------------------------------------------------------

/** Read the statistics again in place (a run ended): no loading state, toggles kept. */
export function refreshTrends() {
  return load({ quiet: true });
}

async function load({ quiet = false } = {}) {
  const seq = ++loadSeq;
  clearRangeErrors();
  const range = rangeOf(state);
  if (range.problems) {
    range.problems.forEach((p) => rangeError(p.field, p.message));
    return;
  }
  if (!quiet || $("#trends-results").hidden) setPhase("loading");
  const params = { since: range.since, until: range.until };
  if (state.schedule) params.schedule_id = state.schedule;
  const statsQuery = new URLSearchParams(params);
  if (state.points !== "auto") statsQuery.set("bucket", state.points);
  try {
    const stats = await api("GET", "api/stats?" + statsQuery);
    if (seq !== loadSeq) return;
    models = fromStats(stats);
    bucket = stats.bucket;
    const names = Array.from(new Set(models.map((m) => m.model))).sort();
    models.forEach((m) => { m.color = SERIES_COLORS[names.indexOf(m.model) % SERIES_COLORS.length]; });
    render(stats);
  } catch (err) {
    if (seq !== loadSeq) return;
    showLoadError(err);
  }
}

function setPhase(phase) {
  $("#trends-card").setAttribute("aria-busy", phase === "loading" ? "true" : "false");
  $("#trends-loading").hidden = phase !== "loading";
  $("#trends-results").hidden = phase !== "data";
  $("#trends-empty").hidden = phase !== "empty";
  $("#trends-error").hidden = phase !== "error";
  $("#trends-summary-card").hidden = phase !== "data";
}

function clearRangeErrors() {
  $all("#trends-custom [data-error-for]").forEach((el) => { el.textContent = ""; });
  $all("#trends-custom input").forEach((el) => el.removeAttribute("aria-invalid"));
}

function rangeError(field, message) {
  const slot = $('#trends-custom [data-error-for="' + field + '"]');
  slot.textContent = slot.textContent ? slot.textContent + " " + message : message;
  const input = $(field === "to" ? "#trends-to" : "#trends-from");
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

/** A problem with the range goes next to it; a missing schedule says so; anything else in the card. */
function showLoadError(err) {
  const problems = problemsOf(err).filter((p) => p.field === "since" || p.field === "until");
  if (problems.length && state.range === "custom") {
    setPhase("idle");
    problems.forEach((p) => rangeError(p.field === "until" ? "to" : "from", p.text));
    return;
  }
  let text = problems.length ? problems.map((p) => p.text).join(" ") : plainMessage(err && err.message);
  if (err && err.status === 404 && state.schedule) text = "This schedule does not exist any more. Choose another one.";
  if (err && err.status === 401) return;
  $("#trends-error-text").textContent = text;
  setPhase("error");
}

// --- drawing ------------------------------------------------------------------------------------

function render(stats) {
  if (!models.length) {
    const where = state.schedule ? "this schedule" : "any schedule or benchmark";
    $("#trends-empty-text").textContent = "No runs of " + where + " in this range.";
    setPhase("empty");
    return;
  }
  setPhase("data");
  const label = bucket === "run" ? "One point per run" : bucket === "day" ? "One point per day (UTC)" : "One point per hour";
  const span = whenLabel(Date.parse(stats.since), "run").replace(/:\d\d$/, "") + " – " + whenLabel(Date.parse(stats.until), "run").replace(/:\d\d$/, "");
  $("#trends-note").textContent = label + " · " + plural(models.length, "model") + " · " + span;
  renderLegend();
  renderCharts();
  renderSummary();
}

function renderLegend() {
  const buttons = models.map((m) => h("button", {
    type: "button", class: "model-toggle", "data-testid": "model-toggle", "data-model": m.model,
    "aria-pressed": hidden.has(m.model) ? "false" : "true",
    title: "Show or hide " + m.model + " on the charts",
    onclick: (event) => toggle(m.model, event.currentTarget),
  }, h("i", { class: "swatch", style: { background: m.color }, "aria-hidden": "true" }), m.model));
  const failed = models.some((m) => m.points.some((p) => p.failures));
  $("#trends-legend").replaceChildren(
    h("div", { class: "toggles", role: "group", "aria-label": "Models on the charts" }, buttons),
    h("p", { class: "trends-key muted small" },
      h("span", {}, h("i", { class: "key-line", "aria-hidden": "true" }), "p50"),
      h("span", {}, h("i", { class: "key-band", "aria-hidden": "true" }), "p10–p90"),
      failed ? h("span", {}, h("i", { class: "key-fail", "aria-hidden": "true" }), "had failed requests") : null));
}

function toggle(model, button) {
  if (hidden.has(model)) hidden.delete(model);
  else hidden.add(model);
  button.setAttribute("aria-pressed", hidden.has(model) ? "false" : "true");
  renderCharts();
}

function renderCharts() {
  const visible = models.filter((m) => !hidden.has(m.model));
  const box = $("#trend-charts");
  if (!visible.length) {
    box.replaceChildren(h("p", { class: "chart-empty", "data-testid": "trends-all-hidden" }, "Every model is hidden. Turn one on above."));
    return;
  }
  const width = chartWidth();
  box.dataset.width = width;
  replaceRows(box, METRICS.map((metric) => trendChart({ metric, series: visible, bucket, testId: "trend-" + metric.key, width })), "data-metric");
}

/** One chart's width: the box's, or half of it beside another (style.css: 2 columns above 900 px). */
function chartWidth() {
  const box = $("#trend-charts");
  const columns = getComputedStyle(box).gridTemplateColumns.split(" ").filter(Boolean).length || 1;
  const gap = parseFloat(getComputedStyle(box).columnGap) || 0;
  return Math.floor((box.clientWidth - gap * (columns - 1)) / columns);
}

// Charts are drawn to their width (text at its size on a phone): redrawn when it changes.
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    const box = $("#trend-charts");
    if (!box || box.closest("[hidden]") || !models.length) return;
    if (Math.abs(chartWidth() - Number(box.dataset.width || 0)) > 24) renderCharts();
  }, 150);
});

function renderSummary() {
  const pct = (v) => (isNum(v) ? fmtNum(v * 100, v === 1 || v === 0 ? 0 : 1) + "%" : "—");
  const ttft = METRICS[0];
  const speed = METRICS[1];
  const itl = METRICS[2];
  const cell = (label, value, extra) => h("td", { class: "num" + (extra ? " " + extra : ""), "data-label": label }, value);
  $("#trends-summary-body").replaceChildren(...models.map((m) => {
    const s = m.summary || {};
    const rate = s.success_rate;
    return h("tr", { "data-testid": "summary-row", "data-model": m.model },
      h("th", { scope: "row" }, h("span", { class: "model-cell" }, h("i", { class: "swatch", style: { background: m.color }, "aria-hidden": "true" }), h("code", {}, m.model))),
      cell("Requests", isNum(s.n) ? fmtNum(s.n) : "—"),
      cell("Success", pct(rate), isNum(rate) && rate < 1 ? (rate === 0 ? "fail-text" : "partial-text") : ""),
      cell("TTFT p50", fmtMetric(ttft, (s.ttft_ms || {}).p50)),
      cell("TTFT p90", fmtMetric(ttft, (s.ttft_ms || {}).p90)),
      cell("TTFT p99", fmtMetric(ttft, (s.ttft_ms || {}).p99)),
      cell("Speed p50", fmtMetric(speed, (s.output_speed_tps || {}).p50)),
      cell("ITL p99 (p50)", fmtMetric(itl, (s.itl_p99_ms || {}).p50)),
      cell("Cost total", fmtMoney(s.cost_total)));
  }));
}
