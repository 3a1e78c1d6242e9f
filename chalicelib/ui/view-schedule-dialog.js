/* The new / edit schedule dialog: the chosen models first (chips with a count), a searchable
 * picker that is one tab stop (arrow keys move, Space picks), interval presets, and
 * "… & run now". */
import { $, $all, busy, h } from "./dom.js";
import { api, path } from "./api.js";
import { catalog, loadCatalog, modelChip, priceText, requiresKey, storedKey } from "./models.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { reportError, toast } from "./toasts.js";
import { plural } from "./format.js";

const FIELDS = ["name", "prompt", "max_tokens", "temperature", "interval_hours"];
const PRESETS = [1, 6, 24, 168];
const DEFAULT_INTERVAL = 24;
// A typed name worth offering as a model: provider/model or a bare id the catalog resolves
// (catalog.MODEL_ID_PATTERN and its prefixes); the API has the last word.
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+\-/]{0,199}$/;
const LOOKS_LIKE_MODEL = /^(?:[^/]+\/.+|gpt-.+|o[134].*|claude-.+|gemini-.+)$/;

let editing = null; // the schedule being edited, or null for a new one
let chosen = []; // model names, in the order picked
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
  chosen = schedule ? (schedule.models || []).slice() : [];
  $("#model-search").value = "";
  try {
    await loadCatalog();
  } catch (err) {
    reportError(err);
  }
  renderPicker();
  const dialog = $("#schedule-dialog");
  if (!dialog.open) dialog.showModal();
  form.elements.name.focus();
}

// --- the model picker ----------------------------------------------------------------------

function renderPicker() {
  const listed = catalog.providers.filter((p) => p.models && p.models.length);
  const usable = (p) => !requiresKey(p) || !!storedKey(p.provider_key);
  const ordered = listed.filter(usable).concat(listed.filter((p) => !usable(p))); // usable first
  const known = new Set();
  const groups = ordered.map((p) => {
    const warnId = "picker-nokey-" + p.provider_key.replace(/[^\w-]/g, "");
    const keyless = !usable(p);
    return h("div", { class: "model-group", role: "group", "aria-label": p.provider_key, "data-provider": p.provider_key },
      h("div", { class: "model-group-head" },
        h("span", {}, p.provider_key),
        keyless ? h("span", { class: "needs-key", id: warnId, "data-testid": "picker-nokey" }, "no key: will fail") : null),
      p.models.map((m) => {
        const value = p.provider_key + "/" + m.id;
        known.add(value);
        return modelOption(value, priceText(m), keyless ? warnId : null);
      }));
  });
  const others = chosen.filter((m) => !known.has(m));
  if (others.length) {
    groups.push(h("div", { class: "model-group", role: "group", "aria-label": "Other models" },
      h("div", { class: "model-group-head" }, h("span", {}, "other")),
      others.map((m) => modelOption(m, "", null))));
  }
  const picker = $("#model-picker");
  picker.replaceChildren(...(groups.length ? groups : [h("p", { class: "muted small picker-empty" }, "No models available. Add a provider under Keys & providers.")]));
  filterPicker();
  renderChosen();
}

function modelOption(value, price, warnId) {
  const input = h("input", { type: "checkbox", name: "models", value, checked: chosen.includes(value), tabindex: -1, "data-testid": "model-option", "aria-describedby": warnId });
  input.addEventListener("change", () => {
    if (input.checked && !chosen.includes(value)) chosen.push(value);
    if (!input.checked) chosen = chosen.filter((m) => m !== value);
    setActive(input);
    renderChosen();
  });
  return h("label", { class: "model-option", "data-model": value }, input, h("code", {}, value), price ? h("span", { class: "price" }, price) : null);
}

/** The chosen models as removable chips, a count, and the keyless ones called out. */
function renderChosen() {
  $("#models-count").textContent = chosen.length ? plural(chosen.length, "model") + " chosen" : "none chosen";
  $("#models-chosen").replaceChildren(...chosen.map((name) => modelChip(name, { tag: "no key: will fail", onRemove: () => unchoose(name), testId: "chosen-model" })));
}

function unchoose(name) {
  chosen = chosen.filter((m) => m !== name);
  const box = optionInputs().find((el) => el.value === name);
  if (box) box.checked = false;
  renderChosen();
  const next = $("#models-chosen .chip-remove") || $("#model-search");
  next.focus();
}

function optionInputs() {
  return $all('#model-picker input[name="models"]');
}

function visibleOptions() {
  return optionInputs().filter((el) => !el.closest("[hidden]"));
}

/** One tab stop: only the active option is focusable by Tab. */
function setActive(input) {
  optionInputs().forEach((el) => { el.tabIndex = el === input ? 0 : -1; });
}

function onPickerKey(event) {
  const items = visibleOptions();
  const at = items.indexOf(document.activeElement);
  if (at < 0) return;
  const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
  setActive(next);
  next.focus();
}

function filterPicker() {
  const query = $("#model-search").value.trim().toLowerCase();
  $all("#model-picker .model-option").forEach((option) => {
    option.hidden = !!query && !option.dataset.model.toLowerCase().includes(query);
  });
  $all("#model-picker .model-group").forEach((group) => {
    group.hidden = !group.querySelector(".model-option:not([hidden])");
  });
  const items = visibleOptions();
  const active = items.find((el) => el.tabIndex === 0) || items.find((el) => el.checked) || items[0];
  if (active) setActive(active);
  const typed = $("#model-search").value.trim();
  const add = $("#model-add");
  const offerable = MODEL_ID.test(typed) && LOOKS_LIKE_MODEL.test(typed) && !optionInputs().some((el) => el.value === typed);
  add.hidden = !offerable;
  if (offerable) add.textContent = "Add “" + typed + "”";
  $("#model-none").hidden = items.length > 0 || !query;
}

/** A model the list does not show (built-in providers take any model id): the API judges it. */
function addTyped() {
  const typed = $("#model-search").value.trim();
  if (!typed || chosen.includes(typed)) return;
  chosen.push(typed);
  $("#model-search").value = "";
  renderPicker();
  $("#model-search").focus();
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
    models: chosen.slice(),
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
  $("#model-picker").addEventListener("keydown", onPickerKey);
  $("#model-search").addEventListener("input", filterPicker);
  $("#model-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // Enter in the search never submits the form
      if (!$("#model-add").hidden) addTyped();
    } else if (event.key === "ArrowDown") {
      const first = visibleOptions()[0];
      if (first) { event.preventDefault(); setActive(first); first.focus(); }
    }
  });
  $("#model-add").addEventListener("click", addTyped);
  $("#schedule-submit-run").addEventListener("click", () => {
    runAfterSave = true;
    form.requestSubmit();
  });
  $all('input[name="interval_preset"]').forEach((radio) => radio.addEventListener("change", onPreset));
  $("#schedule-interval").addEventListener("input", syncPreset);
}
