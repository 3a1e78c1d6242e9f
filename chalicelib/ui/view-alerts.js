/* Alert rules (api/alerts): create and edit in a dialog, send a test, delete; the signing secret
 * shown once after create; recent events with their delivery outcome (api/alerts/events); and
 * the alert toasts from the WebSocket (`alert_fired` stays until dismissed, `alert_resolved`
 * leaves on its own), which also refresh this page when it is open.
 */
import { $, $all, busy, cssEscape, focusFirst, h, replaceRows } from "./dom.js";
import { api, path } from "./api.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { fmtNum, isNum, whenCell } from "./format.js";
import { confirmDialog } from "./dialogs.js";
import { currentView } from "./router.js";
import { loadSchedules, scheduleById, schedules } from "./schedules.js";
import { onMessage } from "./jobs.js";
import { reportError, toast } from "./toasts.js";
import { onSessionChange } from "./session.js";

const ANY = "*";
export const METRICS = {
  ttft_ms: { label: "TTFT", unit: "ms", digits: 0 },
  ttfo_ms: { label: "time to first output", unit: "ms", digits: 0 },
  output_speed_tps: { label: "output speed", unit: "tok/s", digits: 1 },
  tokens_per_second: { label: "throughput", unit: "tok/s", digits: 1 },
  itl_p99_ms: { label: "ITL p99", unit: "ms", digits: 1 },
  cost: { label: "cost", unit: "$", digits: 4 },
};
const DELIVERY = {
  delivered: { label: "Delivered", tone: "ok" },
  websocket_only: { label: "Open tabs only", tone: "neutral" },
  pending: { label: "Pending", tone: "partial" },
};

let rules = [];
let events = [];
let eventsCursor = null;
let editing = null; // the rule being edited, or null for a new one
const testOutcomes = new Map(); // rule id → {tone, text}
let wired = false;
let loadedOnce = false;

export const alertsView = {
  title: "Alerts",
  async show() {
    wire();
    if (!loadedOnce) {
      $("#alerts-body").replaceChildren(loadingRow("Loading rules…"));
      $("#alert-events-body").replaceChildren(loadingRow("Loading events…"));
    }
    try {
      await Promise.all([loadSchedules().catch(() => null), loadRules(), loadEvents()]);
    } catch (err) {
      if (!loadedOnce) {
        $("#alerts-body").replaceChildren(loadingRow("Could not load the rules: " + err.message, true));
        $("#alert-events-body").replaceChildren();
      }
      throw err;
    }
    loadedOnce = true;
    renderRules();
    renderEvents();
  },
};

function loadingRow(text, failed = false) {
  return h("tr", {}, h("td", { colspan: 6, class: failed ? "fail-text" : "muted", "aria-busy": failed ? null : "true" }, text));
}

// The toasts work on every page: registered when the module loads.
onMessage((m) => {
  if (m.type !== "alert_fired" && m.type !== "alert_resolved") return;
  const fired = m.type === "alert_fired";
  const link = m.run_id ? { href: "#/history/" + encodeURIComponent(m.run_id), label: "View run" } : null;
  const el = toast(fired ? "error" : "ok", (fired ? "Alert fired: " : "Alert resolved: ") + (m.name || "rule"), (m.model || "") + ": " + eventValue(m, true), link);
  el.dataset.alert = m.type;
  if (currentView() === "alerts") {
    refresh();
    setTimeout(refresh, 2000); // the delivery outcome is written after the send
  }
});

// Another account may sign in in this tab: nothing of this one's rules stays on the page.
onSessionChange((signedIn) => {
  if (signedIn) return;
  loadedOnce = false;
  rules = [];
  events = [];
  eventsCursor = null;
  testOutcomes.clear();
  $("#alert-secret-value").textContent = "";
  $("#alert-secret").hidden = true;
  const dialog = $("#alert-dialog");
  if (dialog.open) dialog.close();
  renderRules();
  renderEvents();
});

/** Read both lists again; redraw only what changed (a redraw under the user's pointer or focus
 * for nothing would lose it). */
async function refresh() {
  try {
    const before = [JSON.stringify(rules), JSON.stringify(events)];
    await Promise.all([loadRules(), loadEvents()]);
    if (currentView() !== "alerts") return;
    if (JSON.stringify(rules) !== before[0]) renderRules();
    if (JSON.stringify(events) !== before[1]) renderEvents();
  } catch (err) {
    if (err.status !== 401) reportError(err);
  }
}

async function loadRules() {
  rules = (await api("GET", "api/alerts")).alerts || [];
}

async function loadEvents(more = false) {
  const answer = await api("GET", "api/alerts/events?limit=20" + (more && eventsCursor ? "&cursor=" + encodeURIComponent(eventsCursor) : ""));
  events = more ? events.concat(answer.events || []) : answer.events || [];
  eventsCursor = answer.next_cursor || null;
}

// --- plain words --------------------------------------------------------------------------

function metricOf(key) {
  return METRICS[key] || { label: key || "value", unit: "", digits: 2 };
}

function withUnit(metric, value) {
  const m = metricOf(metric);
  if (!isNum(value)) return String(value ?? "—");
  if (m.unit === "$") return "$" + value.toLocaleString(undefined, { maximumFractionDigits: 6 });
  const digits = Number.isInteger(value) ? 0 : m.digits;
  return fmtNum(value, digits) + (m.unit ? " " + m.unit : "");
}

/** "TTFT above 2,000 ms", "any failure", "output speed 20 % worse than the median of the last 5 runs". */
export function conditionText(c) {
  if (!c || c.kind === "failure") return "any failure";
  const m = metricOf(c.metric);
  if (c.kind === "threshold") return m.label + " " + (c.op || "above") + " " + withUnit(c.metric, c.value);
  return m.label + " " + fmtNum(c.percent, Number.isInteger(c.percent) ? 0 : 1) + " % worse than the median of the last " + (c.baseline_runs || 5) + " runs";
}

/** What an event measured: "TTFT 652 ms (above 300 ms)", "failed: auth_failed", "back to 104 ms". */
function eventValue(e, short = false) {
  if (e.metric === "failure") {
    if (e.type === "alert_resolved") return "succeeded again";
    return "failed: " + (e.value || "error") + (!short && e.detail ? " · " + e.detail : "");
  }
  const label = metricOf(e.metric).label;
  let text = label + " " + withUnit(e.metric, e.value);
  const c = e.condition || {};
  if (isNum(e.threshold)) text += " (" + (c.op || "threshold") + " " + withUnit(e.metric, e.threshold) + ")";
  else if (isNum(e.baseline)) text += " (median " + withUnit(e.metric, e.baseline) + ")";
  return text;
}

function webhookHost(url) {
  try {
    return new URL(url).host || url;
  } catch (err) {
    return url;
  }
}

function targetText(rule) {
  const schedule = rule.schedule_id ? scheduleById(rule.schedule_id) : null;
  const where = rule.schedule_id ? (schedule ? schedule.name : "a deleted schedule") : "All schedules";
  return { where, model: rule.model === ANY ? "every model" : rule.model };
}

// --- the rules --------------------------------------------------------------------------------

function renderRules() {
  replaceRows($("#alerts-body"), rules.map(ruleRow), "data-alert-id");
  $("#alerts-empty").hidden = rules.length > 0;
  $("#alerts-table").hidden = rules.length === 0;
}

function stateCell(rule) {
  const entries = Object.entries(rule.state || {});
  const firing = entries.filter(([, s]) => s === "firing").map(([m]) => m);
  if (!rule.enabled) return h("span", { class: "pill tone-neutral", "data-testid": "alert-state", "data-state": "paused" }, "Paused");
  if (firing.length) {
    return h("div", { class: "state-list" }, firing.map((m) => h("span", { class: "pill tone-failed", "data-testid": "alert-state", "data-state": "firing", title: "Firing for " + m },
      "Firing", rule.model === ANY ? h("code", { class: "state-model" }, m) : null)));
  }
  return h("span", { class: "pill tone-ok", "data-testid": "alert-state", "data-state": "ok", title: entries.length ? "Not firing" : "Not firing (no run has fired it yet)" }, "OK");
}

function ruleRow(rule) {
  const target = targetText(rule);
  const outcome = testOutcomes.get(rule.id);
  return h("tr", { "data-testid": "alert-row", "data-alert-id": rule.id },
    h("td", { class: "cell-main" },
      h("div", { class: "cell-name", "data-testid": "alert-name" }, rule.name),
      h("div", { class: "cell-sub", "data-testid": "alert-target" }, target.where, " · ", rule.model === ANY ? target.model : h("code", {}, target.model))),
    h("td", { "data-label": "Condition", "data-testid": "alert-condition" }, conditionText(rule.condition)),
    h("td", { "data-label": "Notifies", "data-testid": "alert-webhook" }, rule.webhook_url
      ? h("span", { class: "webhook", title: rule.webhook_url }, h("code", {}, webhookHost(rule.webhook_url)), h("span", { class: "muted small" }, rule.webhook_format === "slack" ? " Slack" : " JSON"))
      : h("span", { class: "muted" }, "Open tabs only")),
    h("td", { "data-label": "State" }, stateCell(rule)),
    h("td", { "data-label": "Enabled" }, enabledSwitch(rule)),
    h("td", { class: "cell-actions" },
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "alert-test", "aria-label": "Send test: " + rule.name, onclick: (e) => sendTest(rule, e.currentTarget) }, "Send test"),
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "alert-edit", "aria-label": "Edit: " + rule.name, onclick: () => openDialog(rule) }, "Edit"),
        h("button", { type: "button", class: "btn btn-ghost btn-sm btn-danger-text", "data-testid": "alert-delete", "aria-label": "Delete: " + rule.name, onclick: (e) => deleteRule(rule, e.currentTarget) }, "Delete")),
      h("p", { class: "test-outcome small " + (outcome ? "tone-text-" + outcome.tone : ""), "data-testid": "alert-test-outcome", role: "status" }, outcome ? outcome.text : "")));
}

function enabledSwitch(rule) {
  const input = h("input", { type: "checkbox", role: "switch", "data-testid": "alert-enabled-switch", "aria-label": "Enabled: " + rule.name, checked: !!rule.enabled });
  input.addEventListener("change", async () => {
    input.disabled = true;
    try {
      const answer = await api("PUT", path("api/alerts/{}", rule.id), { enabled: input.checked });
      putRule(answer.alert);
      renderRules();
      toast("ok", answer.alert.enabled ? "Alert rule enabled" : "Alert rule paused", rule.name);
      focusFirst($('[data-alert-id="' + cssEscape(rule.id) + '"] [data-testid="alert-enabled-switch"]'));
    } catch (err) {
      input.checked = !input.checked;
      input.disabled = false;
      reportError(err);
    }
  });
  return h("label", { class: "switch" }, input, h("span", { class: "track", "aria-hidden": "true" }), h("span", { class: "switch-label" }, rule.enabled ? "On" : "Off"));
}

function putRule(rule) {
  const known = rules.some((r) => r.id === rule.id);
  rules = known ? rules.map((r) => (r.id === rule.id ? rule : r)) : [rule, ...rules];
}

const TEST_TEXT = {
  delivered: (d) => ({ tone: "ok", text: "Test delivered to the webhook." }),
  websocket_only: () => ({ tone: "ok", text: "Test sent to your open tabs (no webhook set)." }),
  failed: (d) => ({ tone: "failed", text: "Test failed: " + (d.detail || "no answer") }),
};

async function sendTest(rule, button) {
  busy(button, true);
  let outcome;
  try {
    const answer = await api("POST", path("api/alerts/{}/test", rule.id));
    const d = answer.delivery || {};
    outcome = (TEST_TEXT[d.outcome] || (() => ({ tone: "ok", text: "Test: " + (d.outcome || "sent") })))(d);
  } catch (err) {
    if (err.status === 401) return;
    const wait = err.body && err.body.detail && err.body.detail.limit && err.body.detail.limit.cooldown_s;
    outcome = { tone: "failed", text: err.status === 429 ? "Not sent: one test per " + (wait || 10) + " s. Try again in a moment." : "Test not sent: " + err.message };
  } finally {
    busy(button, false);
  }
  testOutcomes.set(rule.id, outcome);
  const slot = $('[data-alert-id="' + cssEscape(rule.id) + '"] [data-testid="alert-test-outcome"]');
  if (slot) {
    slot.textContent = outcome.text;
    slot.className = "test-outcome small tone-text-" + outcome.tone;
  }
}

async function deleteRule(rule, button) {
  const rows = $all('[data-testid="alert-row"]');
  const at = rows.findIndex((row) => row.dataset.alertId === rule.id);
  const ok = await confirmDialog("Delete “" + rule.name + "”?", "The rule stops watching. Its past events stay listed until they expire.", "Delete");
  if (!ok) { focusFirst(button); return; }
  try {
    await api("DELETE", path("api/alerts/{}", rule.id));
    rules = rules.filter((r) => r.id !== rule.id);
    testOutcomes.delete(rule.id);
    renderRules();
    toast("ok", "Alert rule deleted", rule.name);
    const left = $all('[data-testid="alert-row"] [data-testid="alert-delete"]');
    focusFirst(left[at], left[at - 1], $("#new-alert"));
  } catch (err) {
    reportError(err);
  }
}

// --- the events -----------------------------------------------------------------------------

function deliveryCell(delivery) {
  const d = String(delivery || "pending");
  if (d.startsWith("failed")) {
    const why = d.replace(/^failed:?\s*/, "");
    return h("span", { class: "delivery" }, h("span", { class: "pill tone-failed", "data-testid": "event-delivery", "data-delivery": "failed" }, "Failed"), why ? h("span", { class: "muted small delivery-why" }, why) : null);
  }
  const known = DELIVERY[d] || { label: d, tone: "neutral" };
  return h("span", { class: "pill tone-" + known.tone, "data-testid": "event-delivery", "data-delivery": d }, known.label);
}

function renderEvents() {
  $("#alert-events-body").replaceChildren(...events.map((e) => {
    const fired = e.type === "alert_fired";
    return h("tr", { "data-testid": "alert-event", "data-type": e.type },
      h("td", { "data-label": "When" }, whenCell(e.occurred_at, "—", true)),
      h("td", { "data-label": "Event" }, h("span", { class: "pill " + (fired ? "tone-failed" : "tone-ok"), "data-testid": "event-type" }, fired ? "Fired" : "Resolved")),
      h("td", { "data-label": "Rule", class: "cell-main" }, h("div", {}, h("div", { class: "cell-name" }, e.name || "—"), h("div", { class: "cell-sub" }, h("code", { "data-testid": "event-model" }, e.model || "")))),
      h("td", { "data-label": "Value", "data-testid": "event-value" }, eventValue(e)),
      h("td", { "data-label": "Delivery" }, deliveryCell(e.delivery)),
      h("td", { class: "cell-actions" }, e.run_id ? h("a", { href: "#/history/" + encodeURIComponent(e.run_id), "data-testid": "event-run" }, "View run", h("span", { class: "sr-only" }, ": " + (e.name || "") + ", " + (e.model || ""))) : null));
  }));
  $("#alert-events-empty").hidden = events.length > 0;
  $("#alert-events-table").hidden = events.length === 0;
  $("#alert-events-more").hidden = !eventsCursor;
}

// --- the dialog ------------------------------------------------------------------------------

function fillSchedules(selected) {
  const select = $("#alert-schedule");
  const list = schedules();
  select.replaceChildren(h("option", { value: "" }, "All schedules"), ...list.map((s) => h("option", { value: s.id }, s.name)));
  if (selected && !list.some((s) => s.id === selected)) select.append(h("option", { value: selected }, "A deleted schedule"));
  select.value = selected || "";
  fillModels();
}

function fillModels() {
  const id = $("#alert-schedule").value;
  const from = id ? schedules().filter((s) => s.id === id) : schedules();
  const models = Array.from(new Set(from.flatMap((s) => s.models || [])));
  $("#alert-model-options").replaceChildren(...models.map((m) => h("option", { value: m })));
}

function fillMetrics() {
  const select = $("#alert-metric");
  if (select.options.length) return;
  select.replaceChildren(...Object.entries(METRICS).map(([key, m]) => h("option", { value: key }, m.label.charAt(0).toUpperCase() + m.label.slice(1) + " (" + m.unit + ")")));
}

function syncKind() {
  const kind = $("#alert-kind").value;
  $("#alert-cond-fields").hidden = kind === "failure";
  $all("#alert-cond-fields [data-kind]").forEach((el) => { el.hidden = el.dataset.kind !== kind; });
  const unit = metricOf($("#alert-metric").value).unit;
  $("#alert-value-unit").textContent = unit ? "(" + unit + ")" : "";
  const c = readCondition();
  const complete = c.kind === "failure" || (c.kind === "threshold" ? isNum(c.value) : isNum(c.percent));
  $("#alert-cond-summary").textContent = complete ? "Alerts on " + conditionText(c) + "." : "";
}

async function openDialog(rule) {
  editing = rule || null;
  const form = $("#alert-form");
  form.reset();
  clearErrors(form);
  fillMetrics();
  await loadSchedules().catch(() => null);
  $("#alert-dialog-title").textContent = rule ? "Edit alert rule" : "New alert rule";
  $("#alert-submit").textContent = rule ? "Save changes" : "Create rule";
  fillSchedules(rule ? rule.schedule_id : "");
  if (rule) {
    const c = rule.condition || { kind: "failure" };
    form.elements.name.value = rule.name;
    form.elements.model.value = rule.model === ANY ? "" : rule.model;
    form.elements.kind.value = c.kind;
    if (c.metric) form.elements.metric.value = c.metric;
    if (c.op) form.elements.op.value = c.op;
    if (isNum(c.value)) form.elements.value.value = String(c.value);
    if (isNum(c.percent)) form.elements.percent.value = String(c.percent);
    if (isNum(c.baseline_runs)) form.elements.baseline_runs.value = String(c.baseline_runs);
    form.elements.webhook_url.value = rule.webhook_url || "";
    form.elements.webhook_format.value = rule.webhook_format || "json";
    form.elements.enabled.checked = !!rule.enabled;
  }
  syncKind();
  const dialog = $("#alert-dialog");
  if (!dialog.open) dialog.showModal();
  form.elements.name.focus();
}

function number(raw) {
  const text = String(raw).trim();
  return text === "" ? NaN : Number(text);
}

function readCondition() {
  const form = $("#alert-form");
  const kind = form.elements.kind.value;
  if (kind === "failure") return { kind };
  if (kind === "threshold") return { kind, metric: form.elements.metric.value, op: form.elements.op.value, value: number(form.elements.value.value) };
  return { kind, metric: form.elements.metric.value, percent: number(form.elements.percent.value), baseline_runs: number(form.elements.baseline_runs.value) };
}

function readForm(form) {
  return {
    name: form.elements.name.value.trim(),
    schedule_id: form.elements.schedule_id.value || null,
    model: form.elements.model.value.trim() || ANY,
    condition: readCondition(),
    webhook_url: form.elements.webhook_url.value.trim() || null,
    webhook_format: form.elements.webhook_format.value,
    enabled: form.elements.enabled.checked,
  };
}

function localProblems(values) {
  const problems = [];
  if (!values.name) problems.push({ field: "name", message: "Give the rule a name." });
  for (const [field, value] of Object.entries(values.condition)) {
    if (typeof value === "number" && Number.isNaN(value)) problems.push({ field: "condition." + field, message: "Enter a number." });
  }
  return problems;
}

function sameJson(a, b) {
  const norm = (v) => JSON.stringify(v && typeof v === "object" ? Object.keys(v).sort().reduce((o, k) => ({ ...o, [k]: v[k] }), {}) : v);
  return norm(a) === norm(b);
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const values = readForm(form);
  const problems = localProblems(values);
  if (problems.length) return showLocalErrors(form, problems);
  let body = values;
  if (editing) {
    body = {};
    for (const [k, v] of Object.entries(values)) {
      if (!sameJson(v, editing[k] === undefined ? null : editing[k])) body[k] = v;
    }
    if (!Object.keys(body).length) { $("#alert-dialog").close(); return; }
  }
  const button = $("#alert-submit");
  busy(button, true);
  try {
    const answer = editing ? await api("PUT", path("api/alerts/{}", editing.id), body) : await api("POST", "api/alerts", body);
    $("#alert-dialog").close();
    putRule(answer.alert);
    renderRules();
    if (editing) {
      toast("ok", "Alert rule saved", answer.alert.name);
      focusFirst($('[data-alert-id="' + cssEscape(answer.alert.id) + '"] [data-testid="alert-edit"]'), $("#new-alert"));
    } else {
      toast("ok", "Alert rule created", answer.alert.name);
      showSecret(answer.alert, answer.secret);
    }
  } catch (err) {
    showErrors(form, err);
  } finally {
    busy(button, false);
  }
}

// --- the secret, once ----------------------------------------------------------------------

function showSecret(rule, secret) {
  if (!secret) return;
  $("#alert-secret-rule").textContent = rule.name;
  $("#alert-secret-value").textContent = secret;
  $("#alert-secret-copied").textContent = "";
  $("#alert-secret").hidden = false;
  focusFirst($("#alert-secret-title"));
}

function hideSecret() {
  $("#alert-secret-value").textContent = ""; // not kept on the page once the user is done
  $("#alert-secret").hidden = true;
  focusFirst($('[data-testid="alert-row"] [data-testid="alert-test"]'), $("#new-alert"));
}

async function copySecret() {
  const value = $("#alert-secret-value").textContent;
  const note = $("#alert-secret-copied");
  try {
    await navigator.clipboard.writeText(value);
    note.textContent = "Copied to the clipboard.";
  } catch (err) {
    const range = document.createRange();
    range.selectNodeContents($("#alert-secret-value"));
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    note.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

function wire() {
  if (wired) return;
  wired = true;
  $("#new-alert").addEventListener("click", () => openDialog(null).catch(reportError));
  $("#alert-form").addEventListener("submit", submit);
  $("#alert-schedule").addEventListener("change", fillModels);
  ["#alert-kind", "#alert-metric", "#alert-op"].forEach((s) => $(s).addEventListener("change", syncKind));
  ["#alert-value", "#alert-percent", "#alert-baseline"].forEach((s) => $(s).addEventListener("input", syncKind));
  $("#alert-secret-done").addEventListener("click", hideSecret);
  $("#alert-secret-copy").addEventListener("click", copySecret);
  $("#alert-events-refresh").addEventListener("click", (e) => {
    const button = e.currentTarget;
    busy(button, true);
    refresh().finally(() => busy(button, false));
  });
  $("#alert-events-more").addEventListener("click", async (e) => {
    const button = e.currentTarget;
    busy(button, true);
    try {
      await loadEvents(true);
      renderEvents();
    } catch (err) {
      reportError(err);
    } finally {
      busy(button, false);
    }
  });
}
