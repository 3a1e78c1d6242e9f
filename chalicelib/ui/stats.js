/* Statistics as the charts draw them: the metrics, and per model a list of points
 * {t, n, failures, values: {ttft: {p10, p50, p90}, ...}} read from `GET api/stats` (hour or
 * day buckets) or from the runs themselves (`GET api/history`, one point per run).
 *
 * Per run, the numbers are the run's own results: one result per model for a scheduled run
 * (p10 = p50 = p90 = the value), and for an on-demand run of several runs the same
 * percentiles the API computes (linear interpolation between closest ranks, over successful
 * results only; every result counts in n and failures).
 */
import { api } from "./api.js";
import { fmtNum, isNum } from "./format.js";

export const METRICS = [
  { key: "ttft", title: "Time to first token", short: "TTFT", unit: "ms", field: "ttft_ms", result: "ttft_ms", digits: 0, band: true },
  { key: "speed", title: "Output speed", short: "Speed", unit: "tok/s", field: "output_speed_tps", result: "output_speed_tps", digits: 1, band: true },
  { key: "itl", title: "Inter-token latency p99", short: "ITL p99", unit: "ms", field: "itl_p99_ms", result: "itl_p99_ms", digits: 1, band: true },
  { key: "cost", title: "Cost per request", short: "Cost", unit: "$", result: "cost", digits: 4, band: false },
];

/** "104 ms", "98.2 tok/s", "$0.0012" (a cost under a ten-thousandth shows as "<$0.0001"). */
export function fmtMetric(metric, value) {
  if (!isNum(value)) return "—";
  if (metric.unit === "$") return fmtMoney(value);
  return fmtNum(value, value >= 100 ? 0 : metric.digits) + " " + metric.unit;
}

export function fmtMoney(value) {
  if (!isNum(value)) return "—";
  if (value === 0) return "$0";
  if (value < 0.0001) return "<$0.0001";
  return "$" + fmtNum(value, value < 1 ? 4 : 2);
}

/** The API's stats answer as points per model. */
export function fromStats(answer) {
  return (answer.models || []).map((m) => ({
    model: m.model,
    provider: m.provider,
    summary: m.summary,
    points: (m.series || []).map((p) => ({
      t: Date.parse(p.t),
      n: p.n,
      failures: p.failures,
      values: {
        ttft: band(p, "ttft_ms"),
        speed: band(p, "output_speed_tps"),
        itl: band(p, "itl_p99_ms"),
        cost: { p50: p.cost_p50, total: p.cost_total },
      },
    })),
  }));
}

function band(p, field) {
  return { p10: p[field + "_p10"], p50: p[field + "_p50"], p90: p[field + "_p90"] };
}

/** Runs (any order) as points per model, one per run, oldest first. */
export function fromRuns(runs) {
  const byModel = new Map();
  runs.slice().sort((a, b) => (a.created_at || "").localeCompare(b.created_at || "")).forEach((run) => {
    const t = Date.parse(run.created_at);
    const groups = new Map();
    (run.results || []).forEach((r) => {
      const name = r.model || "?";
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(r);
    });
    groups.forEach((results, name) => {
      if (!byModel.has(name)) byModel.set(name, { model: name, provider: results[0].provider, summary: null, points: [] });
      const ok = results.filter((r) => r.success);
      const values = {};
      METRICS.forEach((metric) => {
        const sample = ok.map((r) => r[metric.result]).filter(isNum);
        values[metric.key] = { p10: percentile(sample, 10), p50: percentile(sample, 50), p90: percentile(sample, 90) };
      });
      values.cost.total = results.reduce((sum, r) => sum + (isNum(r.cost) ? r.cost : 0), 0);
      byModel.get(name).points.push({ t, n: results.length, failures: results.length - ok.length, values, runId: run.id });
    });
  });
  return Array.from(byModel.values()).sort((a, b) => a.model.localeCompare(b.model));
}

/** Linear interpolation between closest ranks (NumPy's default), as the API computes it. */
export function percentile(values, q) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  const rank = ((sorted.length - 1) * q) / 100;
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

/** Every run of a range, following the cursor: at most `cap` runs (newest kept). */
export async function loadRuns(params, cap = 1000) {
  const runs = [];
  let cursor = null;
  let truncated = false;
  do {
    const query = new URLSearchParams({ ...params, limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", "api/history?" + query);
    runs.push(...(page.runs || []));
    cursor = page.next_cursor;
    if (runs.length >= cap && cursor) { truncated = true; break; }
  } while (cursor);
  return { runs, truncated };
}
