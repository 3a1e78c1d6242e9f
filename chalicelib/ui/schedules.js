/* The user's schedules as the API last answered them: the list view draws them, History and
 * the jobs widget name runs and jobs by them (a renamed schedule shows its current name). */
import { api } from "./api.js";
import { forgetHealth } from "./health.js";

let list = [];
let loaded = false;

export function schedules() {
  return list;
}

export function scheduleById(id) {
  return list.find((s) => s.id === id);
}

/** Newest first. Never guesses a value the API did not give (a next run, say). */
export async function loadSchedules() {
  const answer = await api("GET", "api/schedules");
  list = (answer.schedules || []).slice().sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  loaded = true;
  return list;
}

export async function ensureSchedules() {
  if (!loaded) await loadSchedules().catch(() => list);
  return list;
}

export function putSchedule(schedule) {
  const known = list.some((s) => s.id === schedule.id);
  list = known ? list.map((s) => (s.id === schedule.id ? schedule : s)) : [schedule, ...list];
}

export function dropSchedule(id) {
  list = list.filter((s) => s.id !== id);
}

export function forgetSchedules() {
  list = [];
  loaded = false;
  forgetHealth(); // signed out: the next account starts from nothing
}

/** The name to show for a run or job of a schedule: the API's current name if it sends one,
 * else the schedule's name now, else the name stored with the run (the schedule is gone). */
export function scheduleName(scheduleId, storedName) {
  const schedule = scheduleId ? scheduleById(scheduleId) : null;
  if (schedule) return schedule.name;
  return storedName ? storedName + (loaded && scheduleId ? " (deleted)" : "") : "";
}
