// Draws a workflow graph the API laid out (GET /workflows/{id}/graph; the layout is
// computed once, in braidflow/topology/layout.py). `states` maps node id -> its status;
// `marks` maps node id -> an extra class (a diff's added/changed); onPick(nodeId) on click.
import { svg } from "./dom.js";

export function drawGraph(graph, { states = {}, marks = {}, onPick = null } = {}) {
  const width = graph.node_width;
  const height = graph.node_height;
  // Room either side for edge labels, which may reach past the outermost boxes.
  const pad = graph.edges.some((edge) => edge.label) ? 90 : 0;
  const picture = svg("svg", {
    class: "graph",
    viewBox: `${-pad} 0 ${graph.width + 2 * pad} ${graph.height}`,
    width: graph.width + 2 * pad,
    role: "img",
    "aria-label": `graph of ${graph.id} version ${graph.version}`,
  });
  picture.append(
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }),
      ),
    ),
  );
  for (const edge of graph.edges) {
    const points = edge.points.map(([x, y]) => `${x},${y}`).join(" ");
    picture.append(
      svg("polyline", { points, class: edge.back ? "edge back" : "edge", "marker-end": "url(#arrow)" }),
    );
    if (edge.label) {
      // Near the target end: labels of edges that leave one node apart stay apart.
      const [[x1, y1], [x2, y2]] = edge.back ? edge.points.slice(1, 3) : edge.points;
      const at = edge.back ? 0.5 : 0.7;
      const anchor = edge.back || x2 > x1 ? "start" : x2 < x1 ? "end" : "start";
      const label = svg("text", {
        x: x1 + (x2 - x1) * at + (anchor === "end" ? -6 : 6),
        y: y1 + (y2 - y1) * at,
        class: "edge-label",
        "text-anchor": anchor,
      });
      label.textContent = edge.label.length > 24 ? `${edge.label.slice(0, 23)}…` : edge.label;
      const tip = svg("title");
      tip.textContent = edge.label;
      label.append(tip);
      picture.append(label);
    }
  }
  for (const node of graph.nodes) {
    const state = states[node.id] || "pending";
    const group = svg("g", {
      class: `node type-${node.type} state-${state} ${marks[node.id] || ""}`,
      "data-node": node.id,
      "data-state": state,
      transform: `translate(${node.x},${node.y})`,
      tabindex: onPick ? 0 : null,
      onclick: onPick ? () => onPick(node.id) : null,
    });
    const shape =
      node.type === "decision" || node.type === "end"
        ? svg("rect", { width, height, rx: height / 2 })
        : svg("rect", { width, height, rx: 4 });
    const title = svg("text", { x: width / 2, y: node.name ? 20 : 29, class: "node-title" });
    title.textContent = node.type === "workflow" ? node.id : `${node.id} (${node.type})`;
    group.append(shape, title);
    if (node.name) {
      const name = svg("text", { x: width / 2, y: 37, class: "node-name" });
      name.textContent = node.name.length > 24 ? `${node.name.slice(0, 23)}…` : node.name;
      group.append(name);
    }
    const tip = svg("title");
    tip.textContent = `${node.id}: ${state}`;
    group.append(tip);
    picture.append(group);
  }
  return picture;
}
