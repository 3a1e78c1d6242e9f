/* The new / edit schedule dialog: the chosen models first (chips with a count), a searchable
 * picker that is one tab stop (arrow keys move, Space picks), interval presets, and
 * "… & run now". */
import { $, $all, busy } from "./dom.js";
import { api, path } from "./api.js";
import { loadCatalog } from "./models.js";
import { modelPicker } from "./model-picker.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { reportError, toast } from "./toasts.js";

const FIELDS = ["name", "prompt", "max_tokens", "temperature", "interval_hours"];
const PRESETS = [1, 6, 24, 168];
const DEFAULT_INTERVAL = 24;

let editing = null; // the schedule being edited, or null for a new one
let runAfterSave = false; // set by "… & run now", which submits the form (Enter never does)
const savedListeners = [];

/** fn(schedule, runAfter): the API saved the schedule (created or changed). */
export function onScheduleSaved(fn) {
  savedListeners.push(fn);
}

export async function openScheduleDialog(schedule) {
  editing = schedule || null;
  const form = $("#schedule-form");
  form.reset();
  clearErrors(form);
  $("#schedule-dialog-title").textContent = schedule ? "Edit schedule" : "New schedule";
  $("#schedule-submit").textContent = schedule ? "Save changes" : "Create";
  $("#schedule-submit-run").textContent = schedule ? "Save & run now" : "Create & run now";
  if (schedule) FIELDS.forEach((f) => { form.elements[f].value = schedule[f]; });
  else form.elements.interval_hours.value = DEFAULT_INTERVAL;
  syncPreset();
  $("#model-search").value = "";
  try {
    await loadCatalog();
  } catch (err) {
    reportError(err);
  }
  modelsPicker().set(schedule ? schedule.models : []);
  const dialog = $("#schedule-dialog");
  if (!dialog.open) dialog.showModal();
  form.elements.name.focus();
}

// --- the model picker (model-picker.js, bound to the dialog's elements) ----------------------

let picker = null;

function modelsPicker() {
  picker = picker || modelPicker($("#models-legend").closest("fieldset"), "");
  return picker;
}

// --- interval presets ------------------------------------------------------------------------

function syncPreset() {
  const hours = Number($("#schedule-interval").value);
  const preset = PRESETS.includes(hours) ? String(hours) : "custom";
  $all('input[name="interval_preset"]').forEach((radio) => { radio.checked = radio.value === preset; });
}

function onPreset(event) {
  const radio = event.target;
  if (radio.value === "custom") {
    $("#schedule-interval").focus();
    return;
  }
  $("#schedule-interval").value = radio.value;
}

// --- saving ----------------------------------------------------------------------------------

function readForm(form) {
  const number = (name) => {
    const raw = form.elements[name].value.trim();
    return raw === "" ? NaN : Number(raw);
  };
  return {
    name: form.elements.name.value.trim(),
    models: modelsPicker().get(),
    prompt: form.elements.prompt.value,
    max_tokens: number("max_tokens"),
    temperature: number("temperature"),
    interval_hours: number("interval_hours"),
  };
}

/** Only what the browser can tell for sure; ranges and models are the API's to judge. */
function localProblems(values) {
  const problems = [];
  if (!values.name) problems.push({ field: "name", message: "Give the schedule a name." });
  if (!values.models.length) problems.push({ field: "models", message: "Choose at least one model." });
  if (!values.prompt.trim()) problems.push({ field: "prompt", message: "Write a prompt." });
  ["max_tokens", "temperature", "interval_hours"].forEach((f) => {
    if (Number.isNaN(values[f])) problems.push({ field: f, message: "Enter a number." });
  });
  return problems;
}

function changedFields(values, schedule) {
  const changes = {};
  for (const [f, value] of Object.entries(values)) {
    const same = Array.isArray(value) ? JSON.stringify(value) === JSON.stringify(schedule[f]) : value === schedule[f];
    if (!same) changes[f] = value;
  }
  return changes;
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const runAfter = runAfterSave;
  runAfterSave = false;
  const values = readForm(form);
  const problems = localProblems(values);
  if (problems.length) return showLocalErrors(form, problems);
  const body = editing ? changedFields(values, editing) : values;
  const buttons = [$("#schedule-submit"), $("#schedule-submit-run")];
  if (editing && !Object.keys(body).length) {
    $("#schedule-dialog").close();
    if (runAfter) savedListeners.forEach((fn) => fn(editing, true));
    return;
  }
  buttons.forEach((b) => busy(b, true));
  try {
    const answer = editing
      ? await api("PUT", path("api/schedules/{}", editing.id), body)
      : await api("POST", "api/schedules", body);
    $("#schedule-dialog").close();
    if (!runAfter) toast("ok", editing ? "Schedule saved" : "Schedule created", answer.schedule.name); // else "Benchmark started" says it
    savedListeners.forEach((fn) => fn(answer.schedule, runAfter));
  } catch (err) {
    showErrors(form, err);
  } finally {
    buttons.forEach((b) => busy(b, false));
  }
}

export function wireScheduleDialog() {
  const form = $("#schedule-form");
  form.addEventListener("submit", submit);
  modelsPicker();
  $("#schedule-submit-run").addEventListener("click", () => {
    runAfterSave = true;
    form.requestSubmit();
  });
  $all('input[name="interval_preset"]').forEach((radio) => radio.addEventListener("change", onPreset));
  $("#schedule-interval").addEventListener("input", syncPreset);
}
