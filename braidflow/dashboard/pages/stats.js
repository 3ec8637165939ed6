// Analytics: the windowed figures of GET /stats (issue 17 item 3) as plain SVG charts.
import { ApiError, get } from "../api.js";
import { h, svg, table } from "../dom.js";

const SERIES = [
  ["completed", "ok"],
  ["failed", "bad"],
  ["cancelled", "muted"],
  ["timed_out", "warn"],
];

export async function show(page) {
  page.append(h("h1", {}, "Analytics"));
  let stats;
  try {
    stats = await get("/stats?window=1m");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      page.append(h("p", {}, "This worker serves no statistics yet."));
      return;
    }
    throw error;
  }
  const byWorkflow = new Map();
  for (const bucket of stats.buckets) {
    const name = bucket.workflow_id || bucket.department || "all";
    if (!byWorkflow.has(name)) byWorkflow.set(name, []);
    byWorkflow.get(name).push(bucket);
  }
  if (!byWorkflow.size) page.append(h("p", {}, "No execution in the window yet."));
  for (const [name, buckets] of byWorkflow) {
    buckets.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    page.append(
      h("section", { class: "card chart", "data-name": name },
        h("h2", {}, name),
        h("div", { class: "columns" }, bars(buckets), latency(buckets)),
        legend(),
        table(["p50 ms", "p95 ms", "p99 ms", "retries", "dead letters", "SLA breached", "cost", "tokens"], [h("tr", {},
          ...["p50", "p95", "p99"].map((q) => h("td", {}, last(buckets).duration_ms?.[q] ?? "")),
          h("td", {}, sum(buckets, "retries")),
          h("td", {}, sum(buckets, "dead_letters")),
          h("td", {}, sum(buckets, "sla_breached")),
          // What model calls cost (the connections' prices' currency), rounded as the API does.
          h("td", { "data-figure": "cost" }, Number(sum(buckets, "cost").toFixed(9))),
          h("td", { "data-figure": "tokens" }, sum(buckets, "tokens")),
        )]),
      ),
    );
  }
}

// The newest window that has durations: the quantiles the table shows.
const last = (items) => [...items].reverse().find((b) => b.duration_ms && b.duration_ms.p50 !== null) || {};
const sum = (items, field) => items.reduce((total, item) => total + (Number(item[field]) || 0), 0);
// At least this many windows across a chart, newest on the right: a few windows make thin
// bars at the right end, not bars the width of the chart.
const SLOTS = 30;
const WIDTH = 600;

function slotX(index, count) {
  const slots = Math.max(count, SLOTS);
  return ((slots - count + index) * WIDTH) / slots;
}

// Stacked bars: executions ended per window, by how they ended.
function bars(buckets) {
  const height = 160;
  const top = Math.max(1, ...buckets.map((b) => SERIES.reduce((t, [f]) => t + (b[f] || 0), 0)));
  const step = WIDTH / Math.max(buckets.length, SLOTS);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${height + 20}`, class: "bars", role: "img", "aria-label": "executions per window" });
  chart.append(svg("line", { x1: 0, y1: height, x2: WIDTH, y2: height, class: "baseline" }));
  buckets.forEach((bucket, index) => {
    let y = height;
    for (const [field, tone] of SERIES) {
      const size = ((bucket[field] || 0) / top) * height;
      if (!size) continue;
      y -= size;
      const bar = svg("rect", { x: slotX(index, buckets.length) + 1, y, width: Math.max(step - 2, 1), height: size, class: `tone-${tone}` });
      const tip = svg("title");
      tip.textContent = `${bucket.start}: ${bucket[field]} ${field}`;
      bar.append(tip);
      chart.append(bar);
    }
  });
  const label = svg("text", { x: 0, y: height + 16, class: "axis" });
  label.textContent = `${buckets.length} window${buckets.length === 1 ? "" : "s"} of executions ended, up to ${top} in one`;
  chart.append(label);
  return chart;
}

// p50 / p95 / p99 duration per window: points joined by lines (windows without one skipped).
function latency(buckets) {
  const height = 120;
  const top = Math.max(1, ...buckets.map((b) => b.duration_ms?.p99 || 0));
  const step = WIDTH / Math.max(buckets.length, SLOTS);
  const chart = svg("svg", { viewBox: `-4 -4 ${WIDTH + 8} ${height + 24}`, class: "lines", role: "img", "aria-label": "duration quantiles" });
  chart.append(svg("line", { x1: 0, y1: height, x2: WIDTH, y2: height, class: "baseline" }));
  for (const quantile of ["p50", "p95", "p99"]) {
    const points = buckets
      .map((b, i) => [slotX(i, buckets.length) + step / 2, b.duration_ms?.[quantile]])
      .filter(([, value]) => value !== null && value !== undefined)
      .map(([x, value]) => [x, height - (value / top) * height]);
    chart.append(svg("polyline", { points: points.map(([x, y]) => `${x},${y}`).join(" "), class: `line ${quantile}` }));
    for (const [x, y] of points) chart.append(svg("circle", { cx: x, cy: y, r: 3, class: `dot ${quantile}` }));
  }
  const label = svg("text", { x: 0, y: height + 16, class: "axis" });
  label.textContent = `duration p50 / p95 / p99 per window, up to ${Math.round(top)} ms`;
  chart.append(label);
  return chart;
}

function legend() {
  return h("p", { class: "legend" },
    SERIES.map(([field, tone]) => h("span", { class: `key tone-${tone}` }, field)),
    ["p50", "p95", "p99"].map((q) => h("span", { class: `key quantile-${q}` }, q)));
}
