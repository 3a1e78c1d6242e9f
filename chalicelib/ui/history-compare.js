/* Two runs side by side (`#/history/compare?a=<run_id>&b=<run_id>`): per model, each run's
 * TTFT, output speed, ITL p50/p99, duration and cost, and the difference of B against A,
 * said in words ("better", "worse", "same"), not by colour alone. Models only one run has
 * are listed. A model run several times (a manual benchmark) counts with its median. */
import { h } from "./dom.js";
import { fmtNum, isNum, plural, whenCell } from "./format.js";
import { modelName, runStatus, sourcePill, statusPill } from "./status.js";
import { percentile } from "./stats.js";

// [field, label, unit, digits, better: "lower" | "higher"]
const METRICS = [
  ["ttft_ms", "TTFT", "ms", 0, "lower"],
  ["output_speed_tps", "Output speed", "tok/s", 1, "higher"],
  ["itl_p50_ms", "ITL p50", "ms", 1, "lower"],
  ["itl_p99_ms", "ITL p99", "ms", 1, "lower"],
  ["total_time_s", "Duration", "s", 2, "lower"],
  ["cost", "Cost per request", "$", 4, "lower"],
];
const SAME_WITHIN = 0.01; // a change under 1 % reads as "same"

/** Model name → {results, ok, failedTypes} of one run, in the run's order. */
function byModel(run) {
  const models = new Map();
  (run.results || []).forEach((r) => {
    const name = modelName(r);
    if (!models.has(name)) models.set(name, { results: [], ok: [], failedTypes: [] });
    const entry = models.get(name);
    entry.results.push(r);
    if (r.success) entry.ok.push(r);
    else entry.failedTypes.push(r.error_type || "error");
  });
  return models;
}

function value(entry, field) {
  const values = entry.ok
    .filter((r) => field !== "cost" || r.cost_known !== false)
    .map((r) => r[field])
    .filter(isNum);
  return percentile(values, 50);
}

function fmtValue(v, unit, digits) {
  if (!isNum(v)) return "—";
  if (unit === "$") return v === 0 ? "$0" : "$" + v.toFixed(digits);
  return fmtNum(v, digits) + " " + unit;
}

function fmtDelta(delta, unit, digits) {
  const sign = delta > 0 ? "+" : delta < 0 ? "−" : "±";
  const size = Math.abs(delta);
  return sign + (unit === "$" ? "$" + size.toFixed(digits) : fmtNum(size, digits) + " " + unit);
}

/** {text, verdict}: B against A. */
function difference(a, b, unit, digits, better) {
  if (!isNum(a) || !isNum(b)) return { text: "Not comparable", verdict: "none" };
  const delta = b - a;
  const ratio = a !== 0 ? delta / Math.abs(a) : delta === 0 ? 0 : Infinity;
  const pct = Number.isFinite(ratio) ? " (" + (ratio > 0 ? "+" : ratio < 0 ? "−" : "") + fmtNum(Math.abs(ratio) * 100, 0) + " %)" : "";
  if (Math.abs(ratio) < SAME_WITHIN) return { text: "Same" + (delta ? ": " + fmtDelta(delta, unit, digits) : ""), verdict: "same" };
  const improved = better === "lower" ? delta < 0 : delta > 0;
  return { text: (improved ? "Better: " : "Worse: ") + fmtDelta(delta, unit, digits) + pct, verdict: improved ? "better" : "worse" };
}

function cell(entry, field, unit, digits) {
  if (!entry.ok.length) return h("span", { class: "fail-text" }, "failed (" + Array.from(new Set(entry.failedTypes)).join(", ") + ")");
  const v = value(entry, field);
  return fmtValue(v, unit, digits);
}

function runHeading(label, run, titleOf) {
  const status = runStatus(run);
  const models = Array.from(byModel(run).keys());
  const repeats = Math.max(1, ...(run.results || []).map((r) => r.runs || 1));
  return h("div", { class: "card compare-run", "data-testid": "compare-run", "data-run-id": run.id },
    h("p", { class: "compare-label" }, label),
    h("h2", {}, h("a", { href: "#/history/" + encodeURIComponent(run.id), "data-testid": "compare-run-link" }, titleOf(run))),
    h("p", { class: "compare-when" }, whenCell(run.created_at)),
    h("p", { class: "run-pills compare-pills" }, statusPill(status), sourcePill(run)),
    h("p", { class: "muted small" }, plural(models.length, "model") + (repeats > 1 ? " × " + plural(repeats, "run") : "") +
      " · max tokens " + fmtNum(run.max_tokens) + " · temperature " + run.temperature));
}

function settingsNote(a, b) {
  const differs = [];
  if (a.prompt !== b.prompt) differs.push("prompts");
  if (a.max_tokens !== b.max_tokens) differs.push("max tokens");
  if (a.temperature !== b.temperature) differs.push("temperatures");
  if (!differs.length) return h("p", { class: "muted small compare-note", "data-testid": "compare-settings" }, "Same prompt and settings in both runs.");
  return h("p", { class: "compare-note compare-warn", "data-testid": "compare-settings" }, "The runs differ in their " + differs.join(", ") + ": differences may come from that, not from the models.");
}

function modelTable(name, entryA, entryB) {
  const note = (entry) => (entry.results.length > 1 ? " (median of " + entry.ok.length + " of " + entry.results.length + " runs)" : "");
  const rows = METRICS.map(([field, label, unit, digits, better]) => {
    const diff = difference(entryA.ok.length ? value(entryA, field) : null, entryB.ok.length ? value(entryB, field) : null, unit, digits, better);
    const tone = diff.verdict === "better" ? " tone-text-ok" : diff.verdict === "worse" ? " tone-text-failed" : "";
    const arrow = diff.verdict === "better" ? "▲ " : diff.verdict === "worse" ? "▼ " : "";
    return h("tr", { "data-testid": "compare-row", "data-metric": field },
      h("th", { scope: "row" }, label, h("span", { class: "compare-better" }, better === "lower" ? "lower is better" : "higher is better")),
      h("td", { class: "num", "data-label": "Run A", "data-testid": "compare-a" }, cell(entryA, field, unit, digits)),
      h("td", { class: "num", "data-label": "Run B", "data-testid": "compare-b" }, cell(entryB, field, unit, digits)),
      h("td", { class: "num compare-diff" + tone, "data-label": "B vs A", "data-testid": "compare-diff", "data-verdict": diff.verdict },
        h("span", {}, arrow ? h("span", { "aria-hidden": "true" }, arrow) : null, diff.text)));
  });
  return h("section", { class: "card compare-model", "data-testid": "compare-model", "data-model": name },
    h("h3", { class: "compare-model-name" }, h("code", {}, name)),
    (note(entryA) || note(entryB)) ? h("p", { class: "muted small" }, "Run A" + (note(entryA) || ": one run") + " · Run B" + (note(entryB) || ": one run")) : null,
    h("div", { class: "compare-wrap" },
      h("table", { class: "table compare-table" },
        h("caption", { class: "sr-only" }, name + ": run A against run B"),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Metric"),
          h("th", { scope: "col", class: "num" }, "Run A"),
          h("th", { scope: "col", class: "num" }, "Run B"),
          h("th", { scope: "col", class: "num" }, "B vs A"))),
        h("tbody", {}, rows))));
}

/** The comparison of `a` (the older run) and `b`, as nodes; `titleOf(run)` names a run. */
export function renderCompare(a, b, titleOf) {
  const modelsA = byModel(a);
  const modelsB = byModel(b);
  const both = Array.from(modelsA.keys()).filter((name) => modelsB.has(name));
  const onlyA = Array.from(modelsA.keys()).filter((name) => !modelsB.has(name));
  const onlyB = Array.from(modelsB.keys()).filter((name) => !modelsA.has(name));
  const only = (label, names) => (names.length
    ? h("li", { "data-testid": "compare-only" }, "Only in run " + label + ": ", names.map((n, i) => [i ? ", " : "", h("code", {}, n)]))
    : null);
  return [
    h("h2", { class: "compare-title", id: "compare-title", tabindex: "-1" }, "Compare two runs"),
    h("div", { class: "compare-runs" }, runHeading("Run A (older)", a, titleOf), runHeading("Run B (newer)", b, titleOf)),
    settingsNote(a, b),
    both.length
      ? both.map((name) => modelTable(name, modelsA.get(name), modelsB.get(name)))
      : h("div", { class: "empty card", "data-testid": "compare-none" }, h("p", {}, h("strong", {}, "These runs have no model in common.")), h("p", { class: "muted" }, "Pick two runs of the same models to see their differences.")),
    onlyA.length || onlyB.length ? h("ul", { class: "card compare-only-list" }, only("A", onlyA), only("B", onlyB)) : null,
  ];
}
