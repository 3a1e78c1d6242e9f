/* History's filters: what the list shows, kept in the address (`#/history?status=partial&…`)
 * so a filtered list is a link that survives a reload.
 *
 * The address holds what the user chose (dates as YYYY-MM-DD, the user's own days); the API
 * query is derived from it: a day runs from the user's local midnight to the next, so
 * "until 3 Dec" includes 3 Dec (the API's `until` is exclusive).
 */
import { $, h } from "./dom.js";
import { RUN_STATUS } from "./status.js";

export const FILTER_KEYS = ["schedule_id", "model", "status", "source", "since", "until"];
const DATE = /^\d{4}-\d{2}-\d{2}$/;
export const SOURCE_LABELS = { schedule: "Schedules (incl. Run now)", manual: "Manual runs" };

/** The query part of the address (`#/history?…`, `#/history/compare?…`). */
export function hashQuery(hash = location.hash) {
  const at = hash.indexOf("?");
  return new URLSearchParams(at >= 0 ? hash.slice(at + 1) : "");
}

/** The filters the address names: known keys with a value only. */
export function readFilters(hash = location.hash) {
  const query = hashQuery(hash);
  const filters = {};
  FILTER_KEYS.forEach((key) => {
    const value = (query.get(key) || "").trim();
    if (value) filters[key] = value;
  });
  return filters;
}

export function isFiltered(filters) {
  return FILTER_KEYS.some((key) => filters[key]);
}

/** `#/history` with the filters as its query, in a fixed order (one list, one address). */
export function filtersHash(filters) {
  const query = new URLSearchParams();
  FILTER_KEYS.forEach((key) => { if (filters[key]) query.set(key, filters[key]); });
  const text = query.toString();
  return "#/history" + (text ? "?" + text : "");
}

/** Local midnight of a YYYY-MM-DD day (+ `days`), as the API's ISO time with a zone. */
function dayStart(day, days = 0) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}

/** The API's parameters for these filters (a date that is not a date is passed as typed, so
 * the API's answer names the field). */
export function apiParams(filters) {
  const params = new URLSearchParams();
  ["schedule_id", "model", "status", "source"].forEach((key) => { if (filters[key]) params.set(key, filters[key]); });
  if (filters.since) params.set("since", DATE.test(filters.since) ? dayStart(filters.since) : filters.since);
  if (filters.until) params.set("until", DATE.test(filters.until) ? dayStart(filters.until, 1) : filters.until);
  return params;
}

function fmtDay(day) {
  if (!DATE.test(day)) return day;
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** The active filters in words: ["Status: Completed with errors", "Source: Manual runs"]. */
export function describeFilters(filters, scheduleLabel) {
  const parts = [];
  if (filters.schedule_id) parts.push("Schedule: " + (scheduleLabel(filters.schedule_id) || filters.schedule_id));
  if (filters.model) parts.push("Model: " + filters.model);
  if (filters.status) parts.push("Status: " + (RUN_STATUS[filters.status] ? RUN_STATUS[filters.status].label : filters.status));
  if (filters.source) parts.push("Source: " + (SOURCE_LABELS[filters.source] || filters.source));
  if (filters.since && filters.until) parts.push("From " + fmtDay(filters.since) + " to " + fmtDay(filters.until));
  else if (filters.since) parts.push("From " + fmtDay(filters.since));
  else if (filters.until) parts.push("Until " + fmtDay(filters.until));
  return parts;
}

/** The form's controls → filters (empty values left out). */
export function formFilters() {
  const filters = {};
  const value = (id) => ($(id).value || "").trim();
  [["schedule_id", "#history-schedule"], ["model", "#history-model"], ["status", "#history-status"],
    ["source", "#history-source"], ["since", "#history-since"], ["until", "#history-until"]].forEach(([key, id]) => {
    if (value(id)) filters[key] = value(id);
  });
  return filters;
}

/** Filters → the form's controls. The schedule picker lists `schedules` ([id, name]); a
 * filter naming a schedule not in it keeps an option of its own, so the form says what the
 * list shows. Model suggestions come from `models`. */
export function fillForm(filters, schedules, models) {
  const select = $("#history-schedule");
  const options = [h("option", { value: "" }, "All schedules")];
  const known = new Set();
  schedules.forEach(([id, name]) => { known.add(id); options.push(h("option", { value: id }, name)); });
  if (filters.schedule_id && !known.has(filters.schedule_id)) options.push(h("option", { value: filters.schedule_id }, "Schedule " + filters.schedule_id.slice(0, 8)));
  select.replaceChildren(...options);
  select.value = filters.schedule_id || "";
  $("#history-models").replaceChildren(...models.map((name) => h("option", { value: name })));
  const model = $("#history-model");
  if (document.activeElement !== model) model.value = filters.model || ""; // never under the user's typing
  setSelect("#history-status", filters.status);
  setSelect("#history-source", filters.source);
  $("#history-since").value = filters.since || "";
  $("#history-until").value = filters.until || "";
}

function setSelect(id, value) {
  const select = $(id);
  select.value = value || "";
  if (select.value !== (value || "")) select.value = ""; // a value the form does not offer
}
