/* The one place that says how a run went, and where it came from.
 *
 * Colours carry one meaning each (style.css): green ok, amber partial ("completed with
 * errors", and warnings of a failure to come), red failed, blue a run a person started
 * (Run now, manual), grey neutral (scheduled, cancelled).
 */
import { h } from "./dom.js";
import { plural } from "./format.js";

export const RUN_STATUS = {
  ok: { label: "Completed", tone: "ok" },
  partial: { label: "Completed with errors", tone: "partial" },
  failed: { label: "Failed", tone: "failed" },
};

export function modelName(result) {
  return result.model || (result.provider ? result.provider + "/" + result.model_id : result.model_id) || "?";
}

/** {key, label, tone, failures: [{model, errorType, error}], total}. The API's `status`
 * when it gives one; else from the results: all succeeded, some, or none. */
export function runStatus(run) {
  const results = run.results || [];
  const failures = results.filter((r) => !r.success).map((r) => ({
    model: modelName(r),
    errorType: r.error_type || "error",
    error: r.error || "",
  }));
  let key = run.status in RUN_STATUS ? run.status : null;
  if (!key) key = results.length && !failures.length ? "ok" : failures.length < results.length ? "partial" : "failed";
  return { key, ...RUN_STATUS[key], failures, total: results.length };
}

/** What went wrong, in a sentence: "Failed: openai/gpt-4o (auth_failed)" or "All 2 models
 * failed: a (auth_failed), b (timeout)"; `why` adds each error's message. Empty if none did. */
export function failureText(status, why = false) {
  if (!status.total) return "The run has no results.";
  if (!status.failures.length) return "";
  const list = status.failures.map((f) => {
    const message = why ? f.error.replace(/^\[[\w-]+\]\s*/, "") : "";
    return f.model + " (" + f.errorType + ")" + (message ? ": " + message : "");
  }).join(why ? "; " : ", ");
  const all = status.failures.length === status.total && status.total > 1;
  return (all ? "All " + plural(status.total, "model") + " failed: " : "Failed: ") + list;
}

export function statusPill(status) {
  return h("span", { class: "pill tone-" + status.tone, "data-testid": "run-status", "data-status": status.key }, status.label);
}

/** Scheduled, "Run now" (a trigger of a schedule) or Manual (an on-demand benchmark). */
export function runSource(run) {
  const meta = run.metadata || {};
  if ((run.source || meta.source) === "manual") return { key: "manual", label: "Manual", tone: "person" };
  if (meta.trigger === "manual") return { key: "run-now", label: "Run now", tone: "person" };
  return { key: "scheduled", label: "Scheduled", tone: "neutral" };
}

export function sourcePill(run) {
  const source = runSource(run);
  return h("span", { class: "pill pill-quiet tone-" + source.tone, "data-testid": "run-source", "data-source": source.key }, source.label);
}
