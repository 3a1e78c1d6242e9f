/* Line charts over time, shared by every view that draws one.
 *
 * A series is {name, color, points: [{t, value, failed, note}]}: `t` in ms, `value` a number
 * for a measured point; a failed point has no value and is drawn as a red × on the baseline,
 * never dropped. Every chart comes with its data as a table (the text alternative).
 */
import { h, svg } from "./dom.js";
import { fmtDate, fmtNum, isNum, plural } from "./format.js";

// Series colours: none of the status colours (green, amber, red), so a line never reads as a verdict.
export const SERIES_COLORS = ["#4f46e5", "#0891b2", "#9333ea", "#db2777", "#475569", "#0369a1", "#7c3aed", "#a16207"];

const W = 520;
const H = 220;
const M = { top: 10, right: 14, bottom: 26, left: 52 };

export function lineChart({ title, series, digits = 0, testId }) {
  const all = series.flatMap((s) => s.points);
  const measured = all.filter((p) => !p.failed && isNum(p.value));
  const times = all.map((p) => p.t);
  const tMin = Math.min(...times);
  const tMax = Math.max(...times);
  const yTicks = niceTicks(Math.max(0, ...measured.map((p) => p.value)) || 1, 4);
  const yMax = yTicks[yTicks.length - 1];
  const x = (t) => (tMax === tMin ? (M.left + W - M.right) / 2 : M.left + ((t - tMin) / (tMax - tMin)) * (W - M.left - M.right));
  const y = (v) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);

  const grid = svg("g", { class: "grid" });
  const axis = svg("g", { class: "axis" });
  yTicks.forEach((v) => {
    grid.appendChild(svg("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    axis.appendChild(svg("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end", text: fmtNum(v, v < 10 && v % 1 ? 1 : 0) }));
  });
  timeTicks(tMin, tMax).forEach((t) => {
    axis.appendChild(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle", text: fmtTick(t, tMax - tMin) }));
  });

  const marks = svg("g", { class: "series" });
  const failuresAt = new Map(); // t → failures drawn there: each next one sits a step higher
  series.forEach((s) => {
    const ok = s.points.filter((p) => !p.failed && isNum(p.value));
    if (ok.length > 1) {
      const d = ok.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.value).toFixed(1)).join("");
      marks.appendChild(svg("path", { d, stroke: s.color }));
    }
    ok.forEach((p) => {
      marks.appendChild(svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.value).toFixed(1), r: 4, fill: s.color },
        svg("title", { text: s.name + " · " + fmtNum(p.value, digits) + " · " + fmtDate(new Date(p.t).toISOString()) })));
    });
    s.points.filter((p) => p.failed).forEach((p) => {
      const k = failuresAt.get(p.t) || 0;
      failuresAt.set(p.t, k + 1);
      marks.appendChild(failMark(x(p.t), y(0) - k * 13, s, p));
    });
  });

  const summary = chartSummary(title, series, digits);
  const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": summary }, grid, axis, marks);
  return h("figure", { class: "chart", "data-testid": testId },
    h("figcaption", {}, title),
    chart,
    dataTable(title, series, digits));
}

function failMark(cx, cy, s, p) {
  const r = 5;
  const d = `M${cx - r},${cy - r}L${cx + r},${cy + r}M${cx - r},${cy + r}L${cx + r},${cy - r}`;
  return svg("g", { class: "fail-mark", "data-testid": "chart-failure" },
    svg("path", { d }),
    svg("title", { text: s.name + " · failed" + (p.note ? " (" + p.note + ")" : "") + " · " + fmtDate(new Date(p.t).toISOString()) }));
}

/** One sentence a screen reader reads for the picture: per series, the latest value and failures. */
function chartSummary(title, series, digits) {
  const parts = series.map((s) => {
    const ok = s.points.filter((p) => !p.failed && isNum(p.value));
    const failed = s.points.length - ok.length;
    const latest = ok.length ? "latest " + fmtNum(ok[ok.length - 1].value, digits) : "no successful run";
    return s.name + ": " + latest + (failed ? ", " + plural(failed, "failure") : "");
  });
  return title + " over time. " + parts.join("; ") + ".";
}

function dataTable(title, series, digits) {
  const times = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p.t)))).sort((a, b) => b - a);
  const cell = (s, t) => {
    const p = s.points.find((q) => q.t === t);
    if (!p) return h("td", { class: "num muted" }, "—");
    if (p.failed) return h("td", { class: "num fail-text" }, "failed" + (p.note ? " (" + p.note + ")" : ""));
    return h("td", { class: "num" }, fmtNum(p.value, digits));
  };
  return h("details", { class: "chart-data" },
    h("summary", {}, "Data table"),
    h("div", { class: "table-wrap" },
      h("table", { class: "table table-compact" },
        h("caption", { class: "sr-only" }, title),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Run"), series.map((s) => h("th", { scope: "col", class: "num" }, s.name)))),
        h("tbody", {}, times.map((t) => h("tr", {}, h("th", { scope: "row" }, fmtDate(new Date(t).toISOString())), series.map((s) => cell(s, t))))))));
}

export function chartLegend(series) {
  return h("div", { class: "legend", "data-testid": "chart-legend" },
    series.map((s) => h("span", {}, h("i", { style: { background: s.color } }), s.name)),
    series.some((s) => s.points.some((p) => p.failed)) ? h("span", { class: "legend-fail" }, h("b", { "aria-hidden": "true" }, "×"), "failed run") : null);
}

export function niceTicks(max, count) {
  const span = max || 1;
  let step = Math.pow(10, Math.floor(Math.log10(span / count)));
  const err = span / count / step;
  step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
  const ticks = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

export function timeTicks(tMin, tMax) {
  if (tMax === tMin) return [tMin];
  return [0, 1, 2, 3, 4].map((i) => tMin + ((tMax - tMin) * i) / 4);
}

export function fmtTick(t, span) {
  const date = new Date(t);
  if (span < 36 * 3600 * 1000) return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}
