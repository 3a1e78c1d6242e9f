/* Scheduling: the list of schedules and what each row can do. */
import { $, $all, busy, cssEscape, focusFirst, h, replaceRows } from "./dom.js";
import { api, path } from "./api.js";
import { fmtInterval, whenCell } from "./format.js";
import { confirmDialog } from "./dialogs.js";
import { currentView } from "./router.js";
import { dropSchedule, loadSchedules, putSchedule, schedules } from "./schedules.js";
import { loadCatalog, missingKeyFor, modelChip } from "./models.js";
import { trackStarted } from "./jobs.js";
import { healthCell, loadHealth } from "./health.js";
import { reportError, toast } from "./toasts.js";
import { openScheduleDialog } from "./view-schedule-dialog.js";

export const schedulesView = {
  title: "Scheduling",
  async show() {
    await Promise.all([loadSchedules(), loadCatalog().catch(() => null)]);
    renderSchedules();
  },
};

/** Re-read the list (a job ended: the runner moved last_run and, after Run now, next_run). */
export async function refreshSchedules() {
  await loadSchedules();
  if (currentView() === "schedules") renderSchedules();
}

export function renderSchedules() {
  const list = schedules();
  replaceRows($("#schedules-body"), list.map(scheduleRow), "data-schedule-id");
  $("#schedules-empty").hidden = list.length > 0;
  $("#schedules-table").hidden = list.length === 0;
  loadHealth(list); // after the list is on screen; each cell fills in as its answers come
}

function scheduleRow(s) {
  const keyless = Array.from(new Set((s.models || []).map(missingKeyFor).filter(Boolean)));
  return h("tr", { "data-testid": "schedule-row", "data-schedule-id": s.id },
    h("td", { class: "cell-main" },
      h("div", { class: "cell-name", "data-testid": "schedule-name" }, s.name),
      h("div", { class: "cell-sub", title: s.prompt }, h("span", { "data-testid": "schedule-interval" }, "Every " + fmtInterval(s.interval_hours)), " · ", s.prompt)),
    h("td", { "data-label": "Models" }, h("div", {},
      h("div", { class: "chips" }, (s.models || []).map((m) => modelChip(m))),
      keyless.map((p) => h("p", { class: "key-warning", "data-testid": "schedule-key-warning" },
        "No key for " + p + ": will fail. ", h("a", { href: "#/settings" }, "Add a key"))))),
    h("td", { "data-label": "Health" }, healthCell(s)),
    h("td", { "data-label": "Runs" }, h("div", { class: "run-times" },
      h("div", { "data-testid": "schedule-last-run" }, h("span", { class: "run-times-label" }, "Last"), whenCell(s.last_run, "Never", true)),
      h("div", { "data-testid": "schedule-next-run" }, h("span", { class: "run-times-label" }, "Next"),
        s.enabled ? whenCell(s.next_run, "—", true) : h("span", { class: "pill tone-neutral" }, "Paused")))),
    h("td", { "data-label": "Enabled" }, enabledSwitch(s)),
    h("td", { class: "cell-actions" }, h("div", { class: "actions" },
      h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "schedule-run", "aria-label": "Run now: " + s.name, onclick: (e) => runNow(s, e.currentTarget) }, "Run now"),
      h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "schedule-edit", "aria-label": "Edit: " + s.name, onclick: () => openScheduleDialog(s) }, "Edit"),
      h("button", { type: "button", class: "btn btn-ghost btn-sm btn-danger-text", "data-testid": "schedule-delete", "aria-label": "Delete: " + s.name, onclick: (e) => deleteSchedule(s, e.currentTarget) }, "Delete"))));
}

function enabledSwitch(s) {
  const input = h("input", { type: "checkbox", role: "switch", "data-testid": "schedule-enabled", "aria-label": "Enabled: " + s.name, checked: !!s.enabled });
  input.addEventListener("change", () => toggleSchedule(s, input));
  return h("label", { class: "switch" }, input, h("span", { class: "track", "aria-hidden": "true" }), h("span", { class: "switch-label" }, s.enabled ? "On" : "Off"));
}

async function toggleSchedule(s, input) {
  const enabled = input.checked;
  input.disabled = true;
  try {
    const answer = await api("PUT", path("api/schedules/{}", s.id), { enabled });
    putSchedule(answer.schedule);
    renderSchedules();
    toast("ok", enabled ? "Schedule enabled" : "Schedule paused", s.name);
    focusFirst($('[data-schedule-id="' + cssEscape(s.id) + '"] [data-testid="schedule-enabled"]'));
  } catch (err) {
    input.checked = !enabled;
    input.disabled = false;
    reportError(err);
  }
}

/** Starts a run; the list keeps the API's next run (the runner re-phases it when the run ends,
 * and the list is read again then). */
export async function runNow(s, button) {
  busy(button, true);
  try {
    const answer = await api("POST", path("api/schedules/{}/trigger", s.id));
    trackStarted(answer.job_id, s);
    toast("info", "Benchmark started", s.name);
  } catch (err) {
    reportError(err);
  } finally {
    busy(button, false);
  }
}

async function deleteSchedule(s, button) {
  const rows = $all('[data-testid="schedule-row"]');
  const at = rows.findIndex((row) => row.dataset.scheduleId === s.id);
  const ok = await confirmDialog("Delete “" + s.name + "”?", "The schedule stops running. Its past runs stay in History.", "Delete");
  if (!ok) { focusFirst(button); return; }
  try {
    await api("DELETE", path("api/schedules/{}", s.id));
    dropSchedule(s.id);
    renderSchedules();
    toast("ok", "Schedule deleted", s.name);
    // Focus where the row was: the next row's first action, else the previous one's, else "New schedule".
    const left = $all('[data-testid="schedule-row"] [data-testid="schedule-run"]');
    focusFirst(left[at], left[at - 1], $("#new-schedule"));
  } catch (err) {
    reportError(err);
  }
}
