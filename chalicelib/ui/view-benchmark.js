/* On-demand benchmarks (POST api/benchmarks): models, prompt, runs, warm-up; live progress from
 * the WebSocket job events (with a slow REST poll as a fallback); when the job is done, the
 * saved run's per-model summary (p50/p90 over the runs) with a winner marked per metric.
 *
 * The tab keeps its last benchmark (in memory, and its ids in sessionStorage for a reload):
 * leaving the page and coming back shows it again. `#/benchmark/<run_id>` shows a saved run.
 */
import { $, busy, focusFirst, h } from "./dom.js";
import { api, path } from "./api.js";
import { catalog, loadCatalog } from "./models.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { fmtCost, fmtDate, fmtNum, isNum, plural } from "./format.js";
import { modelName, runStatus, statusPill } from "./status.js";
import { onMessage, trackStarted } from "./jobs.js";
import { reportError, toast } from "./toasts.js";
import { modelPicker } from "./model-picker.js";
import { onSessionChange } from "./session.js";

const STORE_KEY = "bench.benchmark";
const ACTIVE = ["pending", "queued", "running"];
const POLL_MS = 4000;
const NOT_RUN = ["cancelled", "deadline"];
const STATUS_TEXT = { pending: "Starting…", queued: "Queued: waiting for a free slot", running: "Running", done: "Done", failed: "Failed", cancelled: "Cancelled", interrupted: "Interrupted" };

// The tab's last benchmark: {jobId, status, pct, detail, live: [result], error, runId, run, models, runs}
let state = readStore();
let submitting = false; // a POST in flight: its job's first events may come before its answer
let early = []; // those events
let pollTimer = null;
let picker = null;
let wired = false;

export const benchmarkView = {
  title: "Benchmark",
  async show(id) {
    wire();
    const pickerBox = $("#bench-model-picker");
    if (!catalog.providers.length) picker.loading();
    const catalogRead = loadCatalog().then(() => picker.refresh(), (err) => {
      if (err.status === 401) return;
      picker.render();
      pickerBox.prepend(h("p", { class: "field-error picker-empty", role: "alert" }, "Could not load the model list: " + err.message + " You can still type provider/model above."));
    });
    if (id && (!state || state.runId !== id)) {
      state = { runId: id, status: "done", live: [] };
      saveStore();
    }
    render();
    await catalogRead;
    if (!state) return;
    if (state.runId && !state.run) await loadRun(state.runId);
    else if (state.jobId && ACTIVE.includes(state.status)) pollJob();
  },
};

// Another account may sign in in this tab: it sees nothing of this one's benchmark.
onSessionChange((signedIn) => {
  if (signedIn) return;
  stopPoll();
  state = null;
  saveStore();
  if (picker) picker.set([]);
  render();
});

function wire() {
  if (wired) return;
  wired = true;
  picker = modelPicker($("#bench-models-legend").closest("fieldset"), "bench");
  picker.set(state && state.models ? state.models : []);
  $("#bench-form").addEventListener("submit", submit);
  $("#bench-cancel").addEventListener("click", cancel);
  onMessage(onSocket);
}

// --- the form ----------------------------------------------------------------------------------

function readForm(form) {
  const number = (name) => {
    const raw = form.elements[name].value.trim();
    return raw === "" ? NaN : Number(raw);
  };
  return {
    models: picker.get(),
    prompt: form.elements.prompt.value,
    max_tokens: number("max_tokens"),
    temperature: number("temperature"),
    runs: number("runs"),
    warmup: form.elements.warmup.checked,
  };
}

function localProblems(values) {
  const problems = [];
  if (!values.models.length) problems.push({ field: "models", message: "Choose at least one model." });
  if (!values.prompt.trim()) problems.push({ field: "prompt", message: "Write a prompt." });
  ["runs", "max_tokens", "temperature"].forEach((f) => {
    if (Number.isNaN(values[f])) problems.push({ field: f, message: "Enter a number." });
  });
  return problems;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const values = readForm(form);
  const problems = localProblems(values);
  if (problems.length) return showLocalErrors(form, problems);
  const button = $("#bench-submit");
  busy(button, true);
  submitting = true;
  early = [];
  try {
    const answer = await api("POST", "api/benchmarks", values);
    stopPoll();
    state = { jobId: answer.job_id, status: "pending", pct: 0, detail: "Waiting to start", live: [], models: values.models, runs: values.runs, startedAt: new Date().toISOString() };
    saveStore();
    trackStarted(answer.job_id, { id: null, name: "Benchmark: " + values.models.join(", ") });
    const mine = early.filter((m) => m.job_id === answer.job_id);
    submitting = false;
    early = [];
    render();
    mine.forEach(onSocket);
    if (ACTIVE.includes(state.status)) schedulePoll();
    $("#bench-cancel").focus();
  } catch (err) {
    showErrors(form, err);
  } finally {
    submitting = false;
    early = [];
    busy(button, false);
    renderButton();
  }
}

async function cancel() {
  if (!state || !state.jobId) return;
  const button = $("#bench-cancel");
  busy(button, true);
  try {
    await api("POST", path("api/jobs/{}/cancel", state.jobId));
    state.detail = "Cancelling…";
    render();
  } catch (err) {
    busy(button, false);
    reportError(err);
  }
}

// --- following the job ------------------------------------------------------------------------

function onSocket(m) {
  if (!m.job_id) return;
  if (submitting && (!state || m.job_id !== state.jobId)) {
    if (early.length < 200) early.push(m);
    return;
  }
  if (!state || m.job_id !== state.jobId || !ACTIVE.includes(state.status)) return;
  switch (m.type) {
    case "job_created":
      if (m.status) state.status = m.status;
      break;
    case "job_started":
      state.status = "running";
      break;
    case "job_progress":
      state.status = "running";
      if (isNum(m.progress_pct) && m.progress_pct >= (state.pct || 0)) state.pct = m.progress_pct;
      if (m.progress_detail) state.detail = m.progress_detail;
      break;
    case "benchmark_init": {
      const data = m.data || {};
      state.status = "running";
      state.total = (data.targets || []).length * (data.runs || 1);
      state.detail = "Benchmarking " + plural((data.targets || []).length, "model") + ", " + plural(data.runs || 1, "run") + " each";
      break;
    }
    case "benchmark_result":
      state.live.push(m.data || {});
      break;
    case "job_completed":
      finish("done", { result_ref: m.result_ref });
      return;
    case "job_failed":
      finish("failed", { error_msg: m.error });
      return;
    case "job_cancelled":
      finish("cancelled", {});
      return;
    default:
      return;
  }
  renderProgress();
}

function schedulePoll() {
  stopPoll();
  pollTimer = setTimeout(pollJob, POLL_MS);
}

function stopPoll() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

/** The socket may be down or a message lost: the job's own record has the last word. */
async function pollJob() {
  stopPoll();
  if (!state || !state.jobId || !ACTIVE.includes(state.status)) return;
  const jobId = state.jobId;
  try {
    const job = await api("GET", path("api/jobs/{}", jobId));
    if (!state || state.jobId !== jobId || !ACTIVE.includes(state.status)) return;
    if (ACTIVE.includes(job.status)) {
      state.status = job.status;
      if (isNum(job.progress_pct) && job.progress_pct >= (state.pct || 0)) state.pct = job.progress_pct;
      if (job.progress_detail) state.detail = job.progress_detail;
      renderProgress();
    } else {
      finish(job.status, job);
      return;
    }
  } catch (err) {
    if (err.status === 404) { state = null; saveStore(); render(); return; }
  }
  schedulePoll();
}

function finish(status, job) {
  stopPoll();
  state.status = status;
  state.error = job.error_msg || job.error || "";
  if (job.result_ref) state.runId = job.result_ref;
  if (status === "done") state.pct = 100;
  saveStore();
  render();
  if (state.runId) loadRun(state.runId);
}

async function loadRun(runId) {
  try {
    const run = await api("GET", path("api/history/{}", runId));
    if (!state || state.runId !== runId) return;
    state.run = run;
    state.models = state.models || modelsOf(run);
    render();
    const heading = $("#bench-results-title");
    if (heading && document.activeElement && document.activeElement.id === "bench-cancel") focusFirst(heading);
  } catch (err) {
    if (err.status === 404 && state && state.runId === runId) {
      state = null;
      saveStore();
      render();
      toast("error", "Run not found", "It may have been deleted.");
      return;
    }
    reportError(err);
  }
}

// --- drawing ---------------------------------------------------------------------------------

function render() {
  if (!wired) return;
  const has = !!state;
  $("#bench-empty").hidden = has;
  renderButton();
  renderProgress();
  renderResults();
}

function renderButton() {
  const running = !!state && ACTIVE.includes(state.status) && !!state.jobId;
  const button = $("#bench-submit");
  if (!submitting) button.disabled = running;
  button.textContent = running ? "Benchmark running…" : "Run benchmark";
}

function renderProgress() {
  const box = $("#bench-progress");
  const show = !!state && !!state.jobId && (ACTIVE.includes(state.status) || state.status !== "done" || !state.run);
  box.hidden = !show;
  if (!show) return;
  const running = ACTIVE.includes(state.status);
  const pct = Math.max(0, Math.min(100, Math.round(Number(state.pct) || 0)));
  $("#bench-progress-title").textContent = running ? "Benchmark running: " + pct + " %" : "Benchmark " + (STATUS_TEXT[state.status] || state.status).toLowerCase();
  box.dataset.status = state.status;
  const bar = $("#bench-bar");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.classList.toggle("indeterminate", state.status === "pending" || state.status === "queued");
  $("#bench-bar-fill").style.width = pct + "%";
  const cancelButton = $("#bench-cancel");
  cancelButton.hidden = !running;
  if (running && state.detail !== "Cancelling…") busy(cancelButton, false);
  const text = [STATUS_TEXT[state.status] || state.status];
  if (state.detail && running) text.push(state.detail);
  if (state.error) text.push(state.error);
  $("#bench-detail").textContent = text.join(" · ");
  $("#bench-live").replaceChildren(...state.live.map(liveItem));
}

function liveItem(r) {
  const name = modelName(r);
  const run = isNum(r.run) && isNum(r.runs) ? "run " + r.run + " of " + r.runs : "";
  const notRun = !r.success && NOT_RUN.includes(r.error_type); // cancelled or cut off: says nothing of the model
  return h("li", { class: "bench-live-item" + (r.success ? "" : notRun ? " is-skipped" : " is-failed"), "data-testid": "bench-live-result" },
    h("code", {}, name), run ? h("span", { class: "muted" }, run) : null,
    r.success
      ? h("span", { class: "num" }, fmtNum(r.ttft_ms) + " ms TTFT · " + fmtNum(r.output_speed_tps, 1) + " tok/s")
      : notRun ? h("span", { class: "muted" }, "not run (" + r.error_type + ")")
        : h("span", { class: "fail-text" }, "failed: " + (r.error_type || "error")));
}

function modelsOf(run) {
  const seen = [];
  (run.results || []).forEach((r) => { const m = modelName(r); if (!seen.includes(m)) seen.push(m); });
  Object.keys(run.summary || {}).forEach((m) => { if (!seen.includes(m)) seen.push(m); });
  return seen;
}

/** Per model: its summary and its results, in the order the run lists them. */
function rowsOf(run) {
  const summary = run.summary || {};
  return modelsOf(run).map((model) => {
    const results = (run.results || []).filter((r) => modelName(r) === model);
    const s = summary[model] || fallbackSummary(results);
    const costKnown = typeof s.cost_known === "boolean" ? s.cost_known : !results.some((r) => r.success && r.cost_known === false);
    const errors = {};
    results.filter((r) => !r.success).forEach((r) => { const t = r.error_type || "error"; errors[t] = (errors[t] || 0) + 1; });
    const firstError = (results.find((r) => !r.success) || {}).error || "";
    return { model, s, results, costKnown, errors, firstError };
  });
}

function fallbackSummary(results) {
  return { n: results.length, successes: results.filter((r) => r.success).length, ttft_ms: {}, output_speed_tps: {}, itl_p50_ms: {}, cost_total: null };
}

const METRICS = [
  { key: "ttft", label: "Lowest TTFT", value: (r) => p(r.s.ttft_ms, "p50"), better: (a, b) => a < b, show: (v) => fmtNum(v) + " ms" },
  { key: "speed", label: "Highest output speed", value: (r) => p(r.s.output_speed_tps, "p50"), better: (a, b) => a > b, show: (v) => fmtNum(v, 1) + " tok/s" },
  { key: "cost", label: "Lowest cost", value: (r) => (r.costKnown ? r.s.cost_total : null), better: (a, b) => a < b, show: (v) => fmtCost({ cost: v }) },
];

function p(stats, q) {
  return stats && isNum(stats[q]) ? stats[q] : null;
}

/** metric key → {models: Set, best, tie}: the best value among models with successes. */
function winners(rows) {
  const eligible = rows.filter((r) => r.s.successes > 0);
  const out = {};
  for (const m of METRICS) {
    const values = eligible.map((r) => [r.model, m.value(r)]).filter(([, v]) => isNum(v));
    if (!values.length) { out[m.key] = { models: new Set(), best: null, tie: false }; continue; }
    const best = values.reduce((acc, [, v]) => (m.better(v, acc) ? v : acc), values[0][1]);
    const models = new Set(values.filter(([, v]) => v === best).map(([name]) => name));
    out[m.key] = { models, best, tie: models.size > 1 };
  }
  return out;
}

function renderResults() {
  const box = $("#bench-results");
  const run = state && state.run;
  const loading = !!state && !run && !!state.runId && !state.jobId; // a saved run opened by its address
  box.hidden = !run && !loading;
  if (!run) {
    box.replaceChildren(...(loading ? [h("div", { class: "card empty", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading the run…"))] : []));
    return;
  }
  const status = runStatus(run);
  const rows = rowsOf(run);
  const wins = winners(rows);
  const runs = run.results && run.results.length ? Math.max(...run.results.map((r) => r.runs || 1)) : 1;
  const failed = rows.filter((r) => Object.keys(r.errors).length);

  box.replaceChildren(h("div", { class: "card" },
    h("div", { class: "card-head" },
      h("div", { class: "bench-results-titles" },
        h("h2", { id: "bench-results-title", tabindex: "-1" }, "Results"),
        h("p", { class: "muted small" }, fmtDate(run.created_at), " · ", plural(rows.length, "model"), " × ", plural(runs, "run"),
          " · max ", fmtNum(run.max_tokens), " tokens · temperature ", String(run.temperature))),
      h("div", { class: "toolbar" },
        statusPill(status),
        h("a", { class: "btn btn-ghost btn-sm", href: "#/history/" + encodeURIComponent(run.id), "data-testid": "bench-history-link" }, "Open in History"))),
    h("p", { class: "run-prompt bench-prompt", title: run.prompt }, run.prompt),
    winnerSummary(wins),
    h("div", { class: "results-wrap" }, summaryTable(rows, wins)),
    failed.length ? h("div", { class: "bench-failures", "data-testid": "bench-failures" },
      h("h3", {}, "Failures"),
      h("ul", {}, failed.map((r) => h("li", { "data-testid": "bench-failure", "data-model": r.model },
        h("code", {}, r.model), ": ",
        Object.entries(r.errors).map(([type, count], i) => [i ? ", " : "", h("strong", { class: "fail-text", "data-testid": "bench-error-type" }, type), count > 1 || r.s.n > 1 ? " (" + count + " of " + r.s.n + ")" : ""]),
        r.firstError ? h("span", { class: "muted" }, " · " + r.firstError.replace(/^\[[\w-]+\]\s*/, "")) : null)))) : null,
    allResults(run)));
}

function winnerSummary(wins) {
  const parts = METRICS.map((m) => {
    const w = wins[m.key];
    if (!w.models.size) return h("li", { "data-testid": "winner-" + m.key }, h("span", { class: "muted" }, m.label + ": "), "no successful result" + (m.key === "cost" ? " with a known cost" : ""));
    return h("li", { "data-testid": "winner-" + m.key },
      h("span", { class: "muted" }, m.label + ": "),
      h("strong", {}, Array.from(w.models).join(", ")),
      " (" + m.show(w.best) + (w.tie ? ", a tie" : "") + ")");
  });
  return h("ul", { class: "winners", "aria-label": "Winners", "data-testid": "bench-winners" }, parts);
}

function winMark(wins, key, model, label) {
  const w = wins[key];
  if (!w.models.has(model)) return null;
  return h("span", { class: "win", "data-testid": "win-" + key, title: label + (w.tie ? " (a tie)" : "") },
    h("span", { "aria-hidden": "true" }, "★"), h("span", { class: "sr-only" }, label + (w.tie ? " (a tie)" : "")), w.tie ? " tie" : " best");
}

function summaryTable(rows, wins) {
  const head = ["Model", "Successes", "TTFT p50 / p90", "Output speed p50 / p90", "ITL p50", "Cost"];
  return h("table", { class: "table results bench-summary", "data-testid": "bench-summary" },
    h("caption", { class: "sr-only" }, "Per-model summary over the runs: p50 and p90; ★ marks the best of each metric"),
    h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i > 1 ? "num" : null }, t)))),
    h("tbody", {}, rows.map((r) => {
      const s = r.s;
      const ok = s.successes > 0;
      const some = s.successes < s.n;
      return h("tr", { "data-testid": "bench-summary-row", "data-model": r.model, class: ok ? null : "row-failed" },
        h("th", { scope: "row", class: "cell-model" }, h("code", {}, r.model)),
        h("td", { "data-label": "Successes" }, h("span", {}, h("span", { class: some ? (ok ? "tone-text-partial" : "tone-text-failed") : "tone-text-ok", "data-testid": "summary-n" }, s.successes + "/" + s.n),
          !ok ? h("span", { class: "fail-text small" }, " failed: " + Object.keys(r.errors).join(", ")) : null)),
        h("td", { class: "num", "data-label": "TTFT p50 / p90" }, ok ? pair(p(s.ttft_ms, "p50"), p(s.ttft_ms, "p90"), 0, "ms", winMark(wins, "ttft", r.model, "Lowest TTFT")) : "—"),
        h("td", { class: "num", "data-label": "Output speed p50 / p90" }, ok ? pair(p(s.output_speed_tps, "p50"), p(s.output_speed_tps, "p90"), 1, "tok/s", winMark(wins, "speed", r.model, "Highest output speed")) : "—"),
        h("td", { class: "num", "data-label": "ITL p50" }, ok && isNum(p(s.itl_p50_ms, "p50")) ? fmtNum(p(s.itl_p50_ms, "p50"), 1) + " ms" : "—"),
        h("td", { class: "num", "data-label": "Cost" }, h("span", {}, winMark(wins, "cost", r.model, "Lowest cost"), " ", h("span", { "data-testid": "summary-cost" }, r.costKnown && isNum(s.cost_total) ? fmtCost({ cost: s.cost_total }) : "unknown"))));
    })));
}

function pair(a, b, digits, unit, mark) {
  return h("span", { class: "pair" },
    h("span", { class: "pair-main" }, mark, " ", h("strong", {}, fmtNum(a, digits)), " " + unit),
    h("span", { class: "pair-sub" }, "p90 " + fmtNum(b, digits)));
}

function allResults(run) {
  const results = run.results || [];
  if (!results.length) return null;
  return h("details", { class: "chart-data bench-all" },
    h("summary", {}, "Every result (" + results.length + ")"),
    h("div", { class: "results-wrap" }, h("table", { class: "table table-compact results" },
      h("thead", {}, h("tr", {}, ["Model", "Run", "TTFT", "Output speed", "ITL p50", "Tokens", "Outcome"].map((t, i) => h("th", { scope: "col", class: i > 0 && i < 6 ? "num" : null }, t)))),
      h("tbody", {}, results.map((r) => h("tr", {},
        h("th", { scope: "row", class: "cell-model" }, h("code", {}, modelName(r))),
        h("td", { class: "num", "data-label": "Run" }, String(r.run || 1) + (r.runs ? " of " + r.runs : "")),
        h("td", { class: "num", "data-label": "TTFT" }, r.success ? fmtNum(r.ttft_ms) + " ms" : "—"),
        h("td", { class: "num", "data-label": "Output speed" }, r.success ? fmtNum(r.output_speed_tps, 1) + " tok/s" : "—"),
        h("td", { class: "num", "data-label": "ITL p50" }, r.success && isNum(r.itl_p50_ms) ? fmtNum(r.itl_p50_ms, 1) + " ms" : "—"),
        h("td", { class: "num", "data-label": "Tokens" }, r.success ? fmtNum(r.output_tokens) : "—"),
        h("td", { "data-label": "Outcome" }, r.success ? h("span", { class: "tone-text-ok" }, "ok") : h("span", { class: "fail-text" }, r.error_type || "failed"))))))));
}

// --- the tab's memory --------------------------------------------------------------------------

function readStore() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
    if (saved && (saved.jobId || saved.runId)) return { ...saved, live: [], run: null };
  } catch (err) { /* nothing kept */ }
  return null;
}

function saveStore() {
  if (!state) { sessionStorage.removeItem(STORE_KEY); return; }
  const { jobId, status, runId, models, runs, pct } = state;
  sessionStorage.setItem(STORE_KEY, JSON.stringify({ jobId, status, runId, models, runs, pct }));
}
