/* Health at a glance in the schedule list: per schedule the last run's outcome, its TTFT
 * and output speed, and a 7-day sparkline of TTFT p50.
 *
 * The last run comes with the schedule (`last_result`); the sparkline is loaded after the
 * list is drawn, at most MAX_AT_ONCE requests in flight for the whole list
 * (`GET api/stats?schedule_id=&since=&bucket=day` per schedule; plus `GET
 * api/history?schedule_id=&limit=1` for a schedule whose last run predates `last_result`);
 * kept per schedule until its `last_run` changes (a run ended).
 */
import { $, cssEscape, h, svg } from "./dom.js";
import { api } from "./api.js";
import { fmtNum, isNum, plural } from "./format.js";
import { SERIES_COLORS } from "./chart.js";
import { failureText, runStatus, statusPill } from "./status.js";
import { percentile } from "./stats.js";

const MAX_AT_ONCE = 4;
const WEEK = 7 * 24 * 3600 * 1000;
const MAX_LINES = 4; // a sparkline with more lines than this is a scribble

const cache = new Map(); // schedule id → {key: last_run, state: "loading" | "done" | "error", run, stats, since, error}
let active = 0;
const waiting = [];

/** A request through the list's shared limit: MAX_AT_ONCE at a time, the rest wait in order. */
function limited(request) {
  return new Promise((resolve, reject) => {
    waiting.push({ request, resolve, reject });
    pump();
  });
}

function pump() {
  while (active < MAX_AT_ONCE && waiting.length) {
    const next = waiting.shift();
    active += 1;
    next.request().then(next.resolve, next.reject).finally(() => { active -= 1; pump(); });
  }
}

export function forgetHealth() {
  cache.clear();
}

/** The cell's content as known now (a placeholder while loading). */
export function healthCell(s) {
  return h("div", { class: "health", "data-testid": "schedule-health", "data-state": stateOf(s) }, healthContent(s));
}

function stateOf(s) {
  if (!s.last_run) return "none";
  const entry = cache.get(s.id);
  return entry && entry.key === s.last_run ? entry.state : "loading";
}

/** Fetch what is missing or stale for the schedules on screen; each cell fills in as it comes. */
export function loadHealth(list) {
  list.forEach((s) => {
    if (!s.last_run) return;
    const entry = cache.get(s.id);
    if (entry && entry.key === s.last_run && entry.state !== "error") return;
    const since = new Date(Date.now() - WEEK);
    const mine = { key: s.last_run, state: "loading", since };
    cache.set(s.id, mine);
    const statsQuery = new URLSearchParams({ schedule_id: s.id, since: since.toISOString(), bucket: "day" });
    const lastRun = s.last_result
      ? Promise.resolve(glanceRun(s.last_result))
      : limited(() => api("GET", "api/history?" + new URLSearchParams({ schedule_id: s.id, limit: "1" }))).then((history) => (history.runs || [])[0] || null);
    Promise.all([lastRun, limited(() => api("GET", "api/stats?" + statsQuery))]).then(([run, stats]) => {
      Object.assign(mine, { state: "done", run, stats });
    }, (err) => {
      Object.assign(mine, { state: "error", error: err && err.message });
    }).finally(() => {
      if (cache.get(s.id) !== mine) return; // a newer load took over
      const cell = $('[data-schedule-id="' + cssEscape(s.id) + '"] [data-testid="schedule-health"]');
      if (cell) {
        cell.dataset.state = mine.state;
        cell.replaceChildren(...[].concat(healthContent(s)));
      }
    });
  });
}

/** A schedule's `last_result` as the run fields this cell reads (status, results, summary). */
function glanceRun(glance) {
  const models = glance.models || [];
  return {
    id: glance.run_id,
    status: glance.status,
    results: models.map((m) => ({ model: m.model, success: m.success, error_type: m.error_type })),
    summary: Object.fromEntries(models.filter((m) => m.success).map((m) => [m.model, { ttft_ms: { p50: m.ttft_ms }, output_speed_tps: { p50: m.output_speed_tps } }])),
  };
}

function healthContent(s) {
  if (!s.last_run) return h("span", { class: "muted small", "data-testid": "health-none" }, "No runs yet");
  const entry = cache.get(s.id);
  if (!entry || entry.key !== s.last_run || entry.state === "loading") {
    return h("span", { class: "health-loading", "aria-busy": "true" }, "Loading…");
  }
  if (entry.state === "error") return h("span", { class: "muted small", title: entry.error || "" }, "Health not available");
  if (!entry.run) return h("span", { class: "muted small", "data-testid": "health-none" }, "No runs yet");
  const status = runStatus(entry.run);
  const pill = statusPill(status);
  const why = failureText(status);
  if (why) pill.title = why;
  return [pill, figures(entry.run), sparkline(s, entry.stats, entry.since)];
}

/** Latest TTFT and output speed: the model's own when one succeeded, else the median over models. */
function figures(run) {
  const ok = (run.results || []).filter((r) => r.success);
  if (!ok.length) return h("span", { class: "health-figures muted", "data-testid": "health-latest" }, "No successful request");
  // The run's own per-model summary (the API's percentiles), for the models that succeeded.
  const summary = run.summary || {};
  const perModel = Array.from(new Set(ok.map((r) => r.model))).map((model) => ({
    model,
    ttft: ((summary[model] || {}).ttft_ms || {}).p50,
    speed: ((summary[model] || {}).output_speed_tps || {}).p50,
  }));
  const one = perModel.length === 1;
  const ttft = one ? perModel[0].ttft : percentile(perModel.map((m) => m.ttft).filter(isNum), 50);
  const speed = one ? perModel[0].speed : percentile(perModel.map((m) => m.speed).filter(isNum), 50);
  const who = one ? perModel[0].model : "median of " + plural(perModel.length, "model");
  const detail = perModel.map((m) => m.model + ": " + fmtNum(m.ttft) + " ms, " + fmtNum(m.speed, 1) + " tok/s").join("; ");
  return h("span", { class: "health-figures", "data-testid": "health-latest", title: "Last run · " + detail },
    h("span", { class: "sr-only" }, "Last run: time to first token "),
    h("span", { "data-testid": "health-ttft" }, fmtNum(ttft) + " ms"),
    h("span", { "aria-hidden": "true" }, " · "),
    h("span", { class: "sr-only" }, ", output speed "),
    h("span", { "data-testid": "health-speed" }, fmtNum(speed, speed >= 100 ? 0 : 1) + " tok/s"),
    h("br"),
    h("span", { class: "muted" }, who));
}

/** TTFT p50 per model over the last 7 days (one point a day), to scale in time; links to Trends. */
function sparkline(s, stats, since) {
  const W = 112;
  const H = 26;
  const t0 = since.getTime();
  const lines = (stats.models || []).map((m, i) => ({
    model: m.model,
    color: SERIES_COLORS[i % SERIES_COLORS.length],
    points: (m.series || []).filter((p) => isNum(p.ttft_ms_p50)).map((p) => ({ t: Math.max(t0, Date.parse(p.t)), v: p.ttft_ms_p50 })),
  })).filter((m) => m.points.length);
  const more = Math.max(0, lines.length - MAX_LINES);
  lines.splice(MAX_LINES);
  const href = "#/trends?" + new URLSearchParams({ range: "7d", schedule: s.id });
  if (!lines.length) return h("a", { class: "spark", href, "data-testid": "schedule-sparkline-none" }, "No TTFT in 7 days");
  const values = lines.flatMap((m) => m.points.map((p) => p.v));
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const x = (t) => 2 + ((t - t0) / WEEK) * (W - 4);
  const y = (v) => (hi === lo ? H / 2 : H - 3 - ((v - lo) / (hi - lo)) * (H - 6));
  const label = "TTFT p50 over 7 days: " + lines.map((m) => {
    const first = m.points[0].v;
    const last = m.points[m.points.length - 1].v;
    return m.model + " " + (m.points.length > 1 ? fmtNum(first) + " → " + fmtNum(last) : fmtNum(last)) + " ms";
  }).join("; ") + (more ? "; and " + plural(more, "more model") : "");
  const marks = lines.map((m) => {
    const last = m.points[m.points.length - 1];
    return svg("g", {},
      m.points.length > 1 ? svg("path", { d: m.points.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(""), stroke: m.color }) : null,
      svg("circle", { cx: x(last.t).toFixed(1), cy: y(last.v).toFixed(1), r: 2.5, fill: m.color }));
  });
  return h("a", { class: "spark", href, title: label + " (open in Trends)" },
    svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label, "data-testid": "schedule-sparkline" },
      svg("line", { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, stroke: "#e3e6ef" }), marks),
    h("span", { "aria-hidden": "true" }, "7 d"));
}

