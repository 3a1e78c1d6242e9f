/* Statistics as the charts draw them: the metrics, and per model a list of points
 * {t, n, failures, values: {ttft: {p10, p50, p90}, ...}, runId} read from `GET api/stats`
 * (hour, day or run buckets; every percentile is the API's). */
import { fmtNum, isNum } from "./format.js";

export const METRICS = [
  { key: "ttft", title: "Time to first token", short: "TTFT", unit: "ms", field: "ttft_ms", result: "ttft_ms", digits: 0, band: true },
  { key: "speed", title: "Output speed", short: "Speed", unit: "tok/s", field: "output_speed_tps", result: "output_speed_tps", digits: 1, band: true },
  { key: "itl", title: "Inter-token latency p99", short: "ITL p99", unit: "ms", field: "itl_p99_ms", result: "itl_p99_ms", digits: 1, band: true },
  { key: "cost", title: "Cost per request", short: "Cost", unit: "$", field: "cost", result: "cost", digits: 4, band: true },
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
        cost: { ...band(p, "cost"), total: p.cost_total },
      },
      runId: p.run_id || null,
    })),
  }));
}

function band(p, field) {
  return { p10: p[field + "_p10"], p50: p[field + "_p50"], p90: p[field + "_p90"] };
}

/** Linear interpolation between closest ranks (NumPy's default), as the API computes it: for
 * figures the API does not give, such as the median of several models' medians. */
export function percentile(values, q) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  const rank = ((sorted.length - 1) * q) / 100;
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}
