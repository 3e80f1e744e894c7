// A DAG run drawn as SVG: dagre (vendored, `../vendor/`) lays the steps out by level with
// edges from their dependencies; each node is a <g data-step data-status> that `paint`
// recolours as the run goes on.
//
// A step's column is its level in the plan (a step with no dependency is in the first, however
// late its dependants run): a hidden source node has an edge to every step, as long as its
// level, which holds it there; dagre alone would draw it next to its dependant.

import dagre from "../vendor/dagre.esm.js";

const SVG = "http://www.w3.org/2000/svg";
const NODE_WIDTH = 228;
const SOURCE = "\u0000levels";
const MARGIN = 12;
const NODE_HEIGHT = 58;

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Lay out and draw `graph` (`GET /runs/{id}/graph`) into `target`; `onSelect(name)` on a click. */
export function drawGraph(target, graph, onSelect) {
  const layout = new dagre.graphlib.Graph();
  layout.setGraph({ rankdir: "LR", nodesep: 22, ranksep: 64 });
  layout.setDefaultEdgeLabel(() => ({}));
  layout.setNode(SOURCE, { width: 0, height: 0 });
  for (const step of graph.steps) {
    layout.setNode(step.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  }
  for (const step of graph.steps) {
    for (const dependency of step.dependencies) layout.setEdge(dependency, step.name);
  }
  graph.levels.forEach((names, level) => {
    for (const name of names) layout.setEdge(SOURCE, name, { minlen: level + 1, weight: 100 });
  });
  dagre.layout(layout);

  const drawn = layout.edges().filter((edge) => edge.v !== SOURCE);
  const names = layout.nodes().filter((name) => name !== SOURCE);
  const boxes = names.map((name) => layout.node(name));
  const left = Math.min(...boxes.map((b) => b.x - b.width / 2)) - MARGIN;
  const top = Math.min(...boxes.map((b) => b.y - b.height / 2)) - MARGIN;
  const width = Math.max(...boxes.map((b) => b.x + b.width / 2)) + MARGIN - left;
  const height = Math.max(...boxes.map((b) => b.y + b.height / 2)) + MARGIN - top;
  target.replaceChildren();
  target.setAttribute("viewBox", `${left} ${top} ${width} ${height}`);
  target.setAttribute("width", width);
  target.setAttribute("height", height);
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  const defs = svg("defs");
  defs.append(marker);
  target.append(defs);

  for (const edge of drawn) {
    const points = layout.edge(edge).points;
    const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`);
    target.append(svg("path", {
      d: d.join(" "), class: "edge", "data-from": edge.v, "data-to": edge.w,
      "marker-end": "url(#arrow)",
    }));
  }
  const types = Object.fromEntries(graph.steps.map((step) => [step.name, step.type]));
  for (const name of names) {
    const { x, y } = layout.node(name);
    const group = svg("g", {
      class: "node", "data-step": name, "data-status": "pending", tabindex: "0",
      role: "button", transform: `translate(${x - NODE_WIDTH / 2}, ${y - NODE_HEIGHT / 2})`,
    });
    group.append(
      svg("rect", { width: NODE_WIDTH, height: NODE_HEIGHT, rx: "8", class: "box" }),
      svg("text", { x: "12", y: "23", class: "name" }, clip(name, 24)),
      svg("text", { x: "12", y: "43", class: "detail" }, `${types[name]} · pending`),
      svg("title", {}, name),
    );
    group.addEventListener("click", () => onSelect(name));
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") onSelect(name);
    });
    target.append(group);
  }
}

function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

/** The status a node shows: a reused or cached step says so, whatever its state. */
export function shownStatus(step, runStatus) {
  if (step.reused_from) return "reused";
  if (step.cached) return "cached";
  if (runStatus === "paused" && step.status === "pending") return "paused";
  return step.status || "pending";
}

/** A node's second line: its type and status, a map step's item counts, its attempts. */
function detail(type, step, status) {
  const items = step.items;
  if (items && typeof items === "object" && "total" in items) {
    const done = items.completed ?? 0;
    const failed = items.failed ? ` · ${items.failed} failed` : "";
    return `${type} · ${done}/${items.total} items${failed}`;
  }
  const attempts = step.attempts > 1 ? ` · ${step.attempts} attempts` : "";
  return `${type} · ${status}${attempts}`;
}

/** Recolour node `name` of `target` as `step` (a status answer's step state) says. */
export function paint(target, name, step, runStatus) {
  const node = target.querySelector(`g.node[data-step="${CSS.escape(name)}"]`);
  if (!node) return;
  const status = shownStatus(step, runStatus);
  node.dataset.status = status;
  const type = step.type || node.querySelector(".detail").textContent.split(" · ")[0];
  node.querySelector(".detail").textContent = detail(type, step, status);
}

/** Mark node `name` as the selected one. */
export function select(target, name) {
  for (const node of target.querySelectorAll("g.node")) {
    node.classList.toggle("selected", node.dataset.step === name);
  }
}
