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
      h("section", { class: "card chart" },
        h("h2", {}, name),
        bars(buckets),
        legend(),
        latency(buckets),
        table(["p50 ms", "p95 ms", "p99 ms", "retries", "dead letters", "SLA breached"], [h("tr", {},
          ...["p50", "p95", "p99"].map((q) => h("td", {}, last(buckets).duration_ms?.[q] ?? "")),
          h("td", {}, sum(buckets, "retries")),
          h("td", {}, sum(buckets, "dead_letters")),
          h("td", {}, sum(buckets, "sla_breached")),
        )]),
      ),
    );
  }
}

const last = (items) => items[items.length - 1];
const sum = (items, field) => items.reduce((total, item) => total + (Number(item[field]) || 0), 0);

// Stacked bars: executions ended per window, by how they ended.
function bars(buckets) {
  const width = 600;
  const height = 160;
  const top = Math.max(1, ...buckets.map((b) => SERIES.reduce((t, [f]) => t + (b[f] || 0), 0)));
  const step = width / Math.max(buckets.length, 1);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, class: "bars", role: "img", "aria-label": "executions per window" });
  buckets.forEach((bucket, index) => {
    let y = height;
    for (const [field, tone] of SERIES) {
      const size = ((bucket[field] || 0) / top) * height;
      if (!size) continue;
      y -= size;
      const bar = svg("rect", { x: index * step + 2, y, width: Math.max(step - 4, 1), height: size, class: `tone-${tone}` });
      const tip = svg("title");
      tip.textContent = `${bucket.start}: ${bucket[field]} ${field}`;
      bar.append(tip);
      chart.append(bar);
    }
  });
  const label = svg("text", { x: 0, y: height + 16, class: "axis" });
  label.textContent = `${buckets.length} windows, up to ${top} executions`;
  chart.append(label);
  return chart;
}

// p50 / p95 / p99 duration per window, as lines.
function latency(buckets) {
  const width = 600;
  const height = 120;
  const top = Math.max(1, ...buckets.map((b) => b.duration_ms?.p99 || 0));
  const step = width / Math.max(buckets.length - 1, 1);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, class: "lines", role: "img", "aria-label": "duration quantiles" });
  for (const quantile of ["p50", "p95", "p99"]) {
    const points = buckets
      .map((b, i) => [i * step, height - ((b.duration_ms?.[quantile] || 0) / top) * height])
      .map(([x, y]) => `${x},${y}`)
      .join(" ");
    chart.append(svg("polyline", { points, class: `line ${quantile}` }));
  }
  const label = svg("text", { x: 0, y: height + 16, class: "axis" });
  label.textContent = `duration p50 / p95 / p99, up to ${top} ms`;
  chart.append(label);
  return chart;
}

function legend() {
  return h("p", { class: "legend" }, SERIES.map(([field, tone]) => h("span", { class: `key tone-${tone}` }, field)));
}
