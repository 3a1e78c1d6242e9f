/* How numbers, money, times and intervals read on screen. */
import { h } from "./dom.js";

export function isNum(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export function fmtNum(value, digits = 0) {
  if (!isNum(value)) return "—";
  return value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function plural(count, word, many) {
  return count + " " + (count === 1 ? word : many || word + "s");
}

export function fmtCost(result) {
  if (result.cost_known === false || !isNum(result.cost)) return "—";
  if (result.cost === 0) return "$0";
  if (result.cost < 0.0001) return "<$0.0001";
  return "$" + result.cost.toFixed(4);
}

export function fmtDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return date.toLocaleString(undefined, options);
}

export function fmtRelative(iso) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return seconds < 0 ? "just now" : "in under a minute";
}

/** The local time with a relative hint ("in 3 hours"), or the hint first (`relativeFirst`);
 * the exact UTC time as title. `refreshTimes` keeps the hints true. */
export function whenCell(iso, emptyText = "Never", relativeFirst = false) {
  if (!iso) return h("span", { class: "muted" }, emptyText);
  const relative = h("span", { class: "rel" }, fmtRelative(iso));
  const absolute = h("span", { class: "abs" }, fmtDate(iso));
  return h("span", { class: "when" + (relativeFirst ? " when-relative" : ""), title: fmtDate(iso) + " (" + iso + ")", "data-iso": iso },
    relativeFirst ? [relative, " ", absolute] : [absolute, " ", relative]);
}

export function refreshTimes() {
  document.querySelectorAll(".when[data-iso] .rel").forEach((el) => {
    el.textContent = fmtRelative(el.parentNode.dataset.iso);
  });
}

/** "hour", "6 hours", "day", "week", "3 days": what follows "Every". */
export function fmtInterval(hours) {
  if (hours === 168) return "week";
  if (hours % 24 === 0) return hours === 24 ? "day" : hours / 24 + " days";
  return hours === 1 ? "hour" : hours + " hours";
}
