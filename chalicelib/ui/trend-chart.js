/* One metric over time for several models: per model a p50 line over a p10–p90 band (where
 * the data has one), a red ring on every point where a request failed, and a crosshair with
 * the exact values under the mouse or, when the chart has focus, moved with the arrow keys.
 *
 * series: [{model, color, points: [{t, n, failures, values: {<metric.key>: {p10, p50, p90, total?}}}]}]
 * (stats.js makes them). The summary table under the charts is their text alternative.
 */
import { h, svg } from "./dom.js";
import { fmtNum, isNum, plural } from "./format.js";
import { niceTicks } from "./chart.js";
import { fmtMetric, fmtMoney } from "./stats.js";

const M = { top: 12, right: 18, bottom: 28, left: 58 };
const PAD = 10; // the first and last points sit inside the plot, clear of the axis labels
const HOUR = 3600 * 1000;
const MAX_DOTS = 80; // past this many points a line alone reads better (and the page stays light)

/** `width`: the chart's width on screen in CSS pixels (its text is drawn at 1:1 there). */
export function trendChart({ metric, series, bucket, testId, width = 640 }) {
  const W = Math.round(Math.max(280, Math.min(720, width)));
  const H = W < 480 ? 200 : 240;
  const at = (p) => p.values[metric.key] || {};
  const times = Array.from(new Set(series.flatMap((s) => s.points.map((p) => p.t)))).sort((a, b) => a - b);
  const tops = series.flatMap((s) => s.points.flatMap((p) => [at(p).p50, metric.band ? at(p).p90 : null])).filter(isNum);
  const yTicks = niceTicks(Math.max(0, ...tops) || (metric.unit === "$" ? 0.001 : 1), 4);
  const yMax = yTicks[yTicks.length - 1];
  const tMin = times[0];
  const tMax = times[times.length - 1];
  const x = (t) => (tMax === tMin ? (M.left + W - M.right) / 2 : M.left + PAD + ((t - tMin) / (tMax - tMin)) * (W - M.left - M.right - 2 * PAD));
  const y = (v) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);

  const grid = svg("g", { class: "grid" });
  const axis = svg("g", { class: "axis", "aria-hidden": "true" });
  yTicks.forEach((v) => {
    grid.appendChild(svg("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    axis.appendChild(svg("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end", text: tickLabel(metric, v) }));
  });
  const ticks = xTicks(tMin, tMax, W < 480 ? 3 : 4);
  ticks.forEach((t, i) => {
    const anchor = ticks.length === 1 ? "middle" : i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle";
    const at = anchor === "start" ? x(t) - PAD : anchor === "end" ? x(t) + PAD : x(t);
    axis.appendChild(svg("text", { x: at, y: H - 8, "text-anchor": anchor, text: timeTick(t, tMax - tMin, bucket) }));
  });

  const bands = svg("g", { class: "bands" });
  const lines = svg("g", { class: "series" });
  const fails = svg("g", { class: "fails" });
  const failsAt = new Map(); // t → rings already on the baseline there: the next sits higher
  series.forEach((s) => {
    const ok = s.points.filter((p) => isNum(at(p).p50));
    const banded = metric.band ? ok.filter((p) => isNum(at(p).p10) && isNum(at(p).p90)) : [];
    if (banded.length > 1) {
      const upper = banded.map((p, i) => (i ? "L" : "M") + xy(x(p.t), y(at(p).p90)));
      const lower = banded.slice().reverse().map((p) => "L" + xy(x(p.t), y(at(p).p10)));
      bands.appendChild(svg("path", { d: upper.join("") + lower.join("") + "Z", fill: s.color, "data-model": s.model }));
    } else if (banded.length === 1) {
      const p = banded[0];
      bands.appendChild(svg("rect", { x: x(p.t) - 5, width: 10, y: y(at(p).p90), height: Math.max(1, y(at(p).p10) - y(at(p).p90)), fill: s.color, "data-model": s.model }));
    }
    const g = svg("g", { "data-testid": "trend-series", "data-model": s.model });
    if (ok.length > 1) g.appendChild(svg("path", { d: ok.map((p, i) => (i ? "L" : "M") + xy(x(p.t), y(at(p).p50))).join(""), stroke: s.color }));
    if (ok.length <= MAX_DOTS) ok.forEach((p) => g.appendChild(svg("circle", { cx: x(p.t).toFixed(1), cy: y(at(p).p50).toFixed(1), r: 3.5, fill: s.color, "data-testid": "trend-point" })));
    lines.appendChild(g);
    s.points.filter((p) => p.failures > 0).forEach((p) => {
      let cy = y(0);
      if (isNum(at(p).p50)) cy = y(at(p).p50);
      else {
        const k = failsAt.get(p.t) || 0;
        failsAt.set(p.t, k + 1);
        cy -= k * 16;
      }
      const all = p.failures === p.n;
      fails.appendChild(svg("g", { class: "fail-ring" + (all ? " fail-all" : ""), "data-testid": "trend-failure", "data-model": s.model },
        svg("circle", { cx: x(p.t).toFixed(1), cy: cy.toFixed(1), r: 7 }),
        all ? svg("path", { d: cross(x(p.t), cy, 3) }) : null));
    });
  });

  const cursor = svg("g", { class: "crosshair", visibility: "hidden" }, svg("line", { y1: M.top, y2: H - M.bottom }));
  const hit = svg("rect", { class: "hit", x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom });
  const picture = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": summary(metric, series) },
    grid, axis, bands, lines, fails, cursor, hit);
  const tip = h("div", { class: "trend-tip", role: "status", "aria-live": "polite", "data-testid": "trend-tooltip", hidden: true });
  const plot = h("div", {
    class: "trend-plot", tabindex: "0", role: "group", "data-testid": "trend-plot",
    "aria-label": metric.title + " chart. Use the left and right arrow keys to read each point.",
  }, picture, tip);

  let index = -1;
  function show(i) {
    if (!times.length) return;
    index = Math.max(0, Math.min(times.length - 1, i));
    const t = times[index];
    const cx = x(t);
    cursor.querySelector("line").setAttribute("x1", cx);
    cursor.querySelector("line").setAttribute("x2", cx);
    cursor.setAttribute("visibility", "visible");
    cursor.querySelectorAll("circle").forEach((c) => c.remove());
    series.forEach((s) => {
      const p = s.points.find((q) => q.t === t);
      if (p && isNum(at(p).p50)) cursor.appendChild(svg("circle", { cx, cy: y(at(p).p50), r: 5.5, stroke: s.color }));
    });
    tip.replaceChildren(...tipContent(metric, series, t, bucket));
    tip.hidden = false;
    const box = picture.getBoundingClientRect();
    const px = (cx / W) * box.width;
    if (px > box.width / 2) {
      tip.style.left = "auto";
      tip.style.right = Math.max(0, box.width - px + 12) + "px";
    } else {
      tip.style.right = "auto";
      tip.style.left = px + 12 + "px";
    }
  }
  function hide() {
    cursor.setAttribute("visibility", "hidden");
    tip.hidden = true;
  }
  hit.addEventListener("pointermove", (event) => {
    const box = picture.getBoundingClientRect();
    const sx = ((event.clientX - box.left) / box.width) * W;
    let best = 0;
    times.forEach((t, i) => { if (Math.abs(x(t) - sx) < Math.abs(x(times[best]) - sx)) best = i; });
    show(best);
  });
  hit.addEventListener("pointerleave", () => { if (document.activeElement !== plot) hide(); });
  plot.addEventListener("focus", () => show(index < 0 ? times.length - 1 : index));
  plot.addEventListener("blur", hide);
  plot.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: times.length - 1 }; // up and down still scroll
    if (event.key in moves) {
      event.preventDefault();
      show(moves[event.key]);
    } else if (event.key === "Escape") {
      hide();
    }
  });

  return h("figure", { class: "trend-chart", "data-testid": testId, "data-metric": metric.key },
    h("figcaption", {}, metric.title, h("span", { class: "unit" }, metric.unit === "$" ? "USD" : metric.unit)),
    plot);
}

function tipContent(metric, series, t, bucket) {
  const rows = [h("div", { class: "tip-time" }, whenLabel(t, bucket))];
  series.forEach((s) => {
    const p = s.points.find((q) => q.t === t);
    if (!p) return;
    const v = p.values[metric.key] || {};
    let detail = "";
    if (metric.band && isNum(v.p10) && isNum(v.p90) && p.n - p.failures > 1) detail = "p10–p90 " + fmtMetric(metric, v.p10) + " – " + fmtMetric(metric, v.p90);
    if (metric.unit === "$" && isNum(v.total)) detail = "total " + fmtMoney(v.total);
    rows.push(h("div", { class: "tip-row", "data-testid": "tip-row", "data-model": s.model },
      h("i", { class: "swatch", style: { background: s.color }, "aria-hidden": "true" }),
      h("span", { class: "tip-model" }, s.model),
      h("strong", { "data-testid": "tip-value", class: isNum(v.p50) ? null : "tip-none" }, isNum(v.p50) ? fmtMetric(metric, v.p50) : p.failures === p.n ? "failed" : "—"),
      h("span", { class: "tip-detail" }, [detail, plural(p.n, "request")].filter(Boolean).join(" · ")),
      p.failures ? h("span", { class: "tip-fail", "data-testid": "tip-failures" }, p.failures + " of " + p.n + " failed") : null));
  });
  return rows;
}

/** The bucket a point stands for: "Dec 2, 13:00–14:00", "Dec 2", or a run's exact time. */
export function whenLabel(t, bucket) {
  const date = new Date(t);
  const day = { month: "short", day: "numeric" };
  if (date.getFullYear() !== new Date().getFullYear()) day.year = "numeric";
  const time = { hour: "2-digit", minute: "2-digit" };
  if (bucket === "day") return date.toLocaleDateString(undefined, { ...day, weekday: "short" }) + " (UTC day)";
  if (bucket === "hour") return date.toLocaleString(undefined, { ...day, ...time }) + "–" + new Date(t + HOUR).toLocaleTimeString(undefined, time);
  return date.toLocaleString(undefined, { ...day, ...time, second: "2-digit" });
}

function summary(metric, series) {
  const parts = series.map((s) => {
    const ok = s.points.filter((p) => isNum((p.values[metric.key] || {}).p50));
    const failed = s.points.reduce((sum, p) => sum + p.failures, 0);
    const latest = ok.length ? "latest p50 " + fmtMetric(metric, ok[ok.length - 1].values[metric.key].p50) : "no successful request";
    return s.model + ": " + latest + (failed ? ", " + plural(failed, "failed request") : "");
  });
  return metric.title + " over time. " + (parts.join("; ") || "No data") + ".";
}

function tickLabel(metric, v) {
  if (metric.unit === "$") return v === 0 ? "$0" : "$" + Number(v.toPrecision(2));
  return fmtNum(v, v < 10 && v % 1 ? 1 : 0);
}

function xTicks(tMin, tMax, count) {
  if (tMax === tMin) return [tMin];
  return Array.from({ length: count }, (_, i) => tMin + ((tMax - tMin) * i) / (count - 1));
}

function timeTick(t, span, bucket) {
  const date = new Date(t);
  if (bucket === "day" && (span === 0 || span >= 36 * HOUR)) return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  if (span === 0) return bucket === "hour" ? whenLabel(t, "hour") : date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  if (span < 15 * 60 * 1000) return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (span < 36 * HOUR) return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function xy(px, py) {
  return px.toFixed(1) + "," + py.toFixed(1);
}

function cross(cx, cy, r) {
  return `M${cx - r},${cy - r}L${cx + r},${cy + r}M${cx - r},${cy + r}L${cx + r},${cy - r}`;
}
