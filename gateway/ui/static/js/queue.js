// An instruction run drawn as its queue: one item per instruction, top to bottom, with the
// jumps its conditions may take, and the order the run actually took.

import { element } from "./api.js";

/** Draw `graph`'s instructions into the list `target`; `onSelect(index)` on a click. */
export function drawQueue(target, graph, onSelect) {
  const items = graph.steps.map((step) => {
    const jumps = graph.jumps?.[step.name] || [];
    const item = element("li", { "data-step": step.name, "data-status": "pending", tabindex: "0" },
      element("span", { class: "index" }, step.name),
      element("span", { class: "type" }, step.type),
      element("span", { class: "request" }, graph.requests?.[step.name] || ""),
      element("span", { class: "state" }, "pending"),
      ...jumps.map((to) => element("span", { class: "jump", "data-to": to }, `⤷ ${to}`)));
    item.addEventListener("click", () => onSelect(step.name));
    return item;
  });
  target.replaceChildren(...items);
}

/** Recolour the queue from the run's steps, and number the steps in the order they ran. */
export function paintQueue(target, steps, executionOrder) {
  for (const item of target.children) {
    const step = steps[item.dataset.step] || {};
    item.dataset.status = step.status || "pending";
    const position = executionOrder.indexOf(Number(item.dataset.step));
    const ran = position >= 0 ? ` · #${position + 1} run` : "";
    item.querySelector(".state").textContent = `${step.status || "pending"}${ran}`;
    const taken = new Set((step.condition?.nextSteps || []).map(String));
    for (const jump of item.querySelectorAll(".jump")) {
      jump.classList.toggle("taken", taken.has(jump.dataset.to));
    }
  }
}
