// The side panel: one step's request, result or error, attempts, timings, tokens and cost, and
// the actions that exist for it (rerun from it once the run has ended; approve or reject it
// while it waits for a person).

import { api, clock, cost, duration, element } from "./api.js";

// How much of a result the panel shows; the whole value is one link away.
const SHOWN_CHARS = 20000;

function row(label, value) {
  if (value === undefined || value === null || value === "") return null;
  return element("div", { class: "row" }, element("dt", {}, label), element("dd", {}, String(value)));
}

function block(title, value, kind) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  const shown = text.length > SHOWN_CHARS ? text.slice(0, SHOWN_CHARS) + "\n…" : text;
  return element("section", { class: `block ${kind || ""}` },
    element("h3", {}, title), element("pre", {}, shown));
}

function tokens(usage) {
  if (!usage) return null;
  const input = usage.input_tokens ?? usage.inputTokens ?? 0;
  const output = usage.output_tokens ?? usage.outputTokens ?? 0;
  return input || output ? `${input} in + ${output} out` : null;
}

function items(step) {
  const counts = step.items;
  if (!counts || typeof counts !== "object") return null;
  return ["completed", "failed", "running"]
    .filter((k) => counts[k] != null)
    .map((k) => `${counts[k]} ${k}`)
    .concat(counts.total != null ? [`of ${counts.total}`] : [])
    .join(", ");
}

/** The panel's content for step `name` of the run. */
export function stepPanel({ name, step, status, request, jumps, run, dag, act }) {
  const runPath = `/runs/${encodeURIComponent(run.workflow_id ?? run.instance_id)}`;
  const badge = element("span", { class: "badge", "data-status": status }, status);
  const heading = element("h2", {}, dag ? name : `step ${name}`, " ", badge);
  const facts = element("dl", {},
    row("type", step.type),
    row("request", request),
    row("attempts", step.attempts),
    row("started", clock(step.started_at)),
    row("finished", clock(step.finished_at)),
    row("took", step.started_at && step.finished_at ? duration(step.started_at, step.finished_at) : ""),
    row("HTTP status", step.http_status),
    row("model", step.provider ? `${step.provider}/${step.model}` : step.model),
    row("tokens", tokens(step.usage)),
    row("cost", cost(step)),
    row("items", items(step)),
    row("retrying", step.last_failure),
    row("next attempt", clock(step.next_attempt_at)),
    row("reused from", step.reused_from),
    row("cached", step.cached ? `${Math.round(step.cache_age_seconds ?? 0)} s old` : ""),
    row("may jump to", jumps?.length ? jumps.join(", ") : ""),
    row("condition", step.condition
      ? `${step.condition.verdict} → ${(step.condition.nextSteps || []).join(", ") || "next in queue"}`
      : ""),
    row("router chose", step.router?.chosen),
  );
  const parts = [heading, facts];
  if (step.child_workflow_id) {
    parts.push(element("p", {}, element("a", {
      href: `/ui/runs/${encodeURIComponent(step.child_workflow_id)}`,
    }, `child run ${step.child_workflow_id}`)));
  }
  if (step.abort_reason) parts.push(block("aborted", step.abort_reason, "error"));
  if (step.error) {
    const error = step.error;
    const where = error.http_status ? ` (HTTP ${error.http_status})` : "";
    parts.push(block("error", `${error.type}${where}: ${error.message}`, "error"));
  }
  if (step.item_errors) parts.push(block("item errors", step.item_errors, "error"));
  if (step.result !== undefined && step.result !== null) parts.push(block("result", step.result));
  if (step.outputs && Object.keys(step.outputs).length) parts.push(block("outputs", step.outputs));
  if (dag && status === "waiting") parts.push(approvalForm(runPath, name, act));
  const ended = ["completed", "failed", "cancelled"].includes(run.status);
  if (dag && ended) {
    const rerun = element("button", { type: "button", class: "rerun" }, "Rerun from this step");
    rerun.addEventListener("click", () =>
      act(
        () => api(`${runPath}/rerun`, { method: "POST", body: { from_step: name } }),
        (accepted) => location.assign(`/ui/runs/${encodeURIComponent(accepted.workflow_id)}`),
      ));
    parts.push(element("div", { class: "actions" }, rerun));
  }
  return element("div", { "data-step": name }, ...parts);
}

/** Approve or reject a waiting step, with a comment and data (JSON) for later steps. */
function approvalForm(runPath, name, act) {
  const data = element("textarea", { id: "approval-data", rows: "3", placeholder: '{"field": "value"}' });
  const comment = element("input", { id: "approval-comment", type: "text", placeholder: "why" });
  const form = element("section", { class: "block approval" },
    element("h3", {}, "waiting for a person"),
    element("label", { for: "approval-data" }, "data (JSON, optional)"), data,
    element("label", { for: "approval-comment" }, "comment"), comment);
  const buttons = element("div", { class: "actions" });
  for (const decision of ["approve", "reject"]) {
    const button = element("button", { type: "button", id: decision, class: decision }, decision);
    button.addEventListener("click", () => {
      const body = { decision, comment: comment.value || null };
      if (data.value.trim()) {
        try {
          body.data = JSON.parse(data.value);
        } catch (error) {
          data.setCustomValidity("not JSON");
          data.reportValidity();
          return;
        }
      }
      act(() => api(`${runPath}/steps/${encodeURIComponent(name)}/approve`, { method: "POST", body }));
    });
    buttons.append(button);
  }
  form.append(buttons);
  return form;
}
