/* Jobs: what the server tells us about the user's benchmarks, and the widget that shows them.
 *
 * The widget is a badge in the top bar (the number of live jobs) that opens a panel on demand;
 * the panel takes its own column (or, on a narrow screen, its own rows above the page), so it
 * never lies over a control. It keeps the last KEEP_FINISHED finished jobs, each linking to its
 * run in History, and remembers whether the user left it open.
 */
import { $, busy, h } from "./dom.js";
import { api, path } from "./api.js";
import { fmtNum, plural, whenCell } from "./format.js";
import { failureText, modelName, runStatus } from "./status.js";
import { scheduleName } from "./schedules.js";
import { reportError, toast } from "./toasts.js";

const ACTIVE = ["pending", "queued", "running"];
const KEEP_FINISHED = 5;
const OPEN_KEY = "bench.jobs.open";
const CLEARED_KEY = "bench.jobs.cleared";
const RANK = { pending: 0, queued: 1, running: 2 }; // any other status is final: 3

const jobs = new Map(); // id → job, as the API shapes it plus `outcome` (the run's status)
const names = new Map(); // id → schedule name, for jobs started from this page
const endListeners = [];

export function isActive(job) {
  return ACTIVE.includes(job.status);
}

/** fn(job), after a job the page saw running has ended (to refresh what it changed). */
export function onJobEnded(fn) {
  endListeners.push(fn);
}

/** A job this page just started: known at once, named, and followed. */
export function trackStarted(jobId, schedule) {
  names.set(jobId, schedule.name);
  upsert({ id: jobId, status: "pending", progress_pct: 0, progress_detail: "Waiting to start", schedule_id: schedule.id, created_at: new Date().toISOString() });
}

export function reset() {
  jobs.clear();
  names.clear();
  render();
}

function jobName(job) {
  return names.get(job.id) || scheduleName(job.schedule_id) || (job.schedule_id ? "Scheduled benchmark" : "Benchmark");
}

function rank(status) {
  return status in RANK ? RANK[status] : 3;
}

/** Merge what we learnt of a job. A job only moves forward, so late news (a REST answer
 * overtaken by socket events, an event overtaken by a sync) never rolls it back. */
function upsert(update) {
  const id = update.id || update.job_id;
  let job = jobs.get(id);
  if (!job) job = { id, status: "pending", progress_pct: 0, created_at: new Date().toISOString() };
  const news = { ...update };
  if (news.status && rank(news.status) < rank(job.status)) {
    delete news.status; delete news.progress_pct; delete news.progress_detail;
  }
  if (isNumber(news.progress_pct) && isNumber(job.progress_pct) && news.progress_pct < job.progress_pct && news.status === job.status) {
    delete news.progress_pct;
  }
  for (const [k, v] of Object.entries(news)) {
    if (v !== undefined && v !== null && k !== "job_id" && k !== "type") job[k] = v;
  }
  jobs.set(id, job);
  render();
  return job;
}

function isNumber(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** A job reached a final status. If the page had seen it live, say how it went (from its
 * saved run, which knows which models failed) and tell the views. */
function ended(id, status, extra) {
  const before = jobs.get(id);
  const wasLive = !!before && isActive(before);
  const job = upsert({ id, ...extra, status, completed_at: (extra && extra.completed_at) || new Date().toISOString() });
  prune();
  if (!wasLive) return;
  announce(job).finally(() => endListeners.forEach((fn) => fn(job)));
}

async function announce(job) {
  await readOutcome(job);
  const name = jobName(job);
  const link = job.result_ref ? { href: "#/history/" + encodeURIComponent(job.result_ref), label: "View run" } : null;
  const outcome = job.outcome;
  if (job.status === "cancelled") toast("info", "Benchmark cancelled", name);
  else if (job.status === "interrupted") toast("error", "Benchmark interrupted", name + (job.error_msg ? ": " + job.error_msg : ""), link);
  else if (outcome && outcome.key === "ok") toast("ok", "Benchmark completed", name, link);
  else if (outcome && outcome.key === "partial") toast("warn", "Completed with errors", name + " · " + failureText(outcome), link);
  else if (outcome) toast("error", "Benchmark failed", name + " · " + failureText(outcome, true), link);
  else if (job.status === "done") toast("ok", "Benchmark completed", name, link);
  else toast("error", "Benchmark failed", name + (job.error_msg || job.error ? ": " + (job.error_msg || job.error) : ""), link);
}

/** The run's status, asked once per job: the run says which models failed, the job does not. */
function readOutcome(job) {
  if (!job.outcomeRead) job.outcomeRead = job.status === "cancelled" ? Promise.resolve() : fetchOutcome(job);
  return job.outcomeRead;
}

async function fetchOutcome(job) {
  try {
    if (!job.result_ref && job.status !== "done") {
      const fresh = await api("GET", path("api/jobs/{}", job.id)); // job_failed carries no result_ref
      Object.assign(job, { result_ref: fresh.result_ref, error_msg: fresh.error_msg });
    }
    if (job.result_ref) job.outcome = runStatus(await api("GET", path("api/history/{}", job.result_ref)));
  } catch (err) {
    /* the toast falls back to the job's own status */
  }
  render();
}

/** Keep the newest finished jobs, forget the rest (and what the user cleared). */
function prune() {
  const cleared = localStorage.getItem(CLEARED_KEY) || "";
  const finished = Array.from(jobs.values()).filter((j) => !isActive(j)).sort(newestFirst);
  finished.forEach((job, i) => {
    if (i >= KEEP_FINISHED || (cleared && (job.completed_at || job.created_at || "") <= cleared)) jobs.delete(job.id);
  });
  jobs.forEach((job) => { if (!isActive(job)) readOutcome(job); });
  render();
}

function newestFirst(a, b) {
  return (b.completed_at || b.created_at || "").localeCompare(a.completed_at || a.created_at || "");
}

function clearFinished() {
  const newest = Array.from(jobs.values()).filter((j) => !isActive(j)).map((j) => j.completed_at || j.created_at || "").sort().pop();
  if (newest) localStorage.setItem(CLEARED_KEY, newest);
  prune();
  $("#jobs-toggle").focus();
}

// --- what the server says -------------------------------------------------------------------

const EVENTS = {
  job_created: (m) => {
    upsert({ id: m.job_id, job_type: m.job_type, status: m.status, progress_detail: m.progress_detail, created_at: m.created_at, progress_pct: 0, schedule_id: m.schedule_id });
    if (!names.has(m.job_id) && !jobs.get(m.job_id).schedule_id) fetchJob(m.job_id);
  },
  job_started: (m) => upsert({ id: m.job_id, status: "running" }),
  job_progress: (m) => upsert({ id: m.job_id, status: "running", progress_pct: m.progress_pct, progress_detail: m.progress_detail }),
  benchmark_init: (m) => {
    const targets = (m.data && m.data.targets) || [];
    upsert({ id: m.job_id, status: "running", progress_detail: "Benchmarking " + plural(targets.length, "model") });
  },
  benchmark_result: (m) => {
    const r = m.data || {};
    const text = modelName(r) + (r.success ? ": " + fmtNum(r.ttft_ms) + " ms TTFT, " + fmtNum(r.tokens_per_second, 1) + " tok/s" : " failed: " + (r.error_type || "error"));
    upsert({ id: m.job_id, progress_detail: text });
  },
  job_completed: (m) => ended(m.job_id, "done", { result_ref: m.result_ref, progress_pct: 100 }),
  job_failed: (m) => ended(m.job_id, "failed", { error: m.error }),
  job_cancelled: (m) => ended(m.job_id, "cancelled"),
  sync: (m) => applySync(m.active_jobs || [], m.recent_jobs || []),
  error: (m) => { if (m.job_id) toast("error", "Job " + String(m.job_id).slice(0, 8), m.error); },
};

const messageListeners = [];

/** fn(message) for every message the socket brings, after the widget took it (the Benchmark
 * page follows its job; alert events become toasts). */
export function onMessage(fn) {
  messageListeners.push(fn);
}

export function handleMessage(message) {
  const handler = message && EVENTS[message.type];
  if (handler) handler(message);
  if (message) messageListeners.forEach((fn) => fn(message));
}

/** A (re)connect: live jobs as they are now; jobs that ended while we were away end here. */
function applySync(activeJobs, recentJobs) {
  activeJobs.forEach((j) => upsert(j));
  recentJobs.forEach((j) => applyJob(j));
  prune();
}

/** A job read over REST or from a sync: update it, announcing it if it just ended. */
function applyJob(j) {
  if (isActive(j)) upsert(j);
  else ended(j.id, j.status, j);
}

async function fetchJob(jobId) {
  try {
    applyJob(await api("GET", path("api/jobs/{}", jobId)));
  } catch (err) { /* a courtesy only: the socket keeps telling */ }
}

/** While the socket is down (and slowly while it is up), live jobs are read over REST. */
export function pollActive() {
  jobs.forEach((job) => { if (isActive(job)) fetchJob(job.id); });
}

async function cancelJob(job, button) {
  busy(button, true);
  try {
    await api("POST", path("api/jobs/{}/cancel", job.id));
  } catch (err) {
    busy(button, false);
    reportError(err);
  }
}

// --- the widget -------------------------------------------------------------------------------

export function isOpen() {
  return localStorage.getItem(OPEN_KEY) === "1";
}

export function setOpen(open) {
  localStorage.setItem(OPEN_KEY, open ? "1" : "0");
  render();
}

export function setConnection(state, note) {
  const dot = $("#conn-dot");
  dot.dataset.state = state;
  dot.title = "Live updates: " + state;
  $("#conn-note").textContent = note || "";
}

const STATUS_TEXT = { pending: "Starting…", queued: "Queued", running: "Running", done: "Completed", failed: "Failed", cancelled: "Cancelled", interrupted: "Interrupted" };

export function render() {
  const all = Array.from(jobs.values());
  const live = all.filter(isActive).sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const finished = all.filter((j) => !isActive(j)).sort(newestFirst);
  const open = isOpen();

  const toggle = $("#jobs-toggle");
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  toggle.setAttribute("aria-label", "Jobs: " + (live.length ? live.length + " running" : "none running") + (open ? "" : ", show"));
  const badge = $("#jobs-count");
  badge.textContent = String(live.length);
  badge.classList.toggle("live", live.length > 0);
  $("#jobs-panel").hidden = !open;
  $("#shell").classList.toggle("with-jobs", open);

  $("#jobs-live").replaceChildren(...live.map(liveItem));
  $("#jobs-live-empty").hidden = live.length > 0;
  $("#jobs-recent").replaceChildren(...finished.map(finishedItem));
  $("#jobs-recent-section").hidden = finished.length === 0;
}

function liveItem(job) {
  const pct = Math.max(0, Math.min(100, Math.round(Number(job.progress_pct) || 0)));
  const name = jobName(job);
  return h("li", { class: "job", "data-testid": "job-item", "data-job-id": job.id, "data-status": job.status },
    h("div", { class: "job-top" },
      h("span", { class: "job-name" }, name),
      h("span", { class: "job-pct", "data-testid": "job-pct" }, pct + " %"),
      h("button", { type: "button", class: "btn-link danger btn-sm", "data-testid": "job-cancel", "aria-label": "Cancel " + name, onclick: (e) => cancelJob(job, e.currentTarget) }, "Cancel")),
    h("div", { class: "progress", role: "progressbar", "aria-label": name + " progress", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
      h("span", { style: { width: pct + "%" } })),
    h("div", { class: "job-detail", "data-testid": "job-status" }, STATUS_TEXT[job.status] || job.status, job.progress_detail ? " · " + job.progress_detail : ""));
}

function finishedItem(job) {
  const name = jobName(job);
  const outcome = job.outcome;
  const tone = outcome && job.status !== "cancelled" ? outcome.tone : { done: "ok", cancelled: "neutral" }[job.status] || "failed";
  const label = outcome && job.status !== "cancelled" ? outcome.label : STATUS_TEXT[job.status] || job.status;
  const why = outcome ? failureText(outcome) : job.error_msg || job.error || "";
  return h("li", { class: "job job-finished", "data-testid": "job-item", "data-job-id": job.id, "data-status": job.status, "data-outcome": outcome ? outcome.key : "" },
    h("div", { class: "job-top" },
      h("span", { class: "job-name" }, name),
      h("span", { class: "pill tone-" + tone, "data-testid": "job-outcome" }, label),
      h("span", { class: "job-when" }, whenCell(job.completed_at || job.created_at, "", true))),
    why ? h("div", { class: "job-detail", title: why }, why) : null,
    job.result_ref ? h("a", { class: "job-link", href: "#/history/" + encodeURIComponent(job.result_ref), "data-testid": "job-link" }, "View run", h("span", { class: "sr-only" }, ": " + name)) : null);
}

export function wireWidget() {
  $("#jobs-toggle").addEventListener("click", () => setOpen(!isOpen()));
  $("#jobs-close").addEventListener("click", () => { setOpen(false); $("#jobs-toggle").focus(); });
  $("#jobs-clear").addEventListener("click", clearFinished);
  render();
}
