// `/ui/runs/{id}`: one run, live. Its shape comes from `GET /runs/{id}/graph`, its state from
// `GET /runs/{id}`, and its event stream recolours the nodes as events arrive and asks for the
// state again (at most one read in flight), until the stream's `end`.

import {
  api, cost, duration, element, followEvents, keyButton, showMessage, withKey,
} from "./api.js";
import { drawGraph, paint, select, shownStatus } from "./graph.js";
import { drawQueue, paintQueue } from "./queue.js";
import { stepPanel } from "./panel.js";

const STATUSES = [
  "pending", "running", "waiting", "paused", "completed", "failed", "aborted", "reused", "cached",
];
const EVENT_STATUS = {
  "step.started": "running",
  "step.completed": "completed",
  "step.failed": "failed",
  "step.waiting": "waiting",
  // An LLM call waiting for its slot under the provider's rate limit (`gateway.live`).
  "step.waiting_for_rate_limit": "waiting",
  "step.aborted": "aborted",
};
const ENDED = new Set(["completed", "failed", "cancelled", "complete", "errored", "terminated"]);
// How soon after an event the run's state is read again: events in a burst share one read.
const REFRESH_MS = 150;

const runId = decodeURIComponent(location.pathname.slice("/ui/runs/".length));
const runPath = `/runs/${encodeURIComponent(runId)}`;
const canvas = document.getElementById("graph");
const queue = document.getElementById("queue");
const panel = document.getElementById("panel");

// `shown`: what the panel was drawn from, so a read that changed nothing of its step leaves
// it be (and a comment half-typed into its approval form with it).
const page = { graph: null, run: null, selected: null, following: null, shown: null };

/** The run's steps by name (an instruction run's by index). */
function stepsOf(run) {
  if (Array.isArray(run.steps)) {
    return Object.fromEntries(run.steps.map((step) => [String(step.index), step]));
  }
  return run.steps || {};
}

function isDag() {
  return page.graph?.engine === "dag";
}

function render() {
  const run = page.run;
  const status = document.getElementById("run-status");
  status.textContent = run.status;
  status.dataset.status = run.status;
  document.getElementById("run-id").textContent = runId;
  document.title = `${runId} · ${run.status} · Workflow Station`;
  const steps = stepsOf(run);
  const progress = run.progress;
  const usage = run.usage || {};
  const tokens = (usage.input_tokens ?? usage.inputTokens ?? 0)
    + (usage.output_tokens ?? usage.outputTokens ?? 0);
  const parts = [
    progress ? `${progress.completed}/${progress.total} steps` : "",
    run.execution_time_ms != null ? `${run.execution_time_ms} ms`
      : run.started_at ? duration(run.started_at) : "",
    tokens ? `${tokens} tokens` : "",
    cost(run),
    run.rerun_of ? `rerun of ${run.rerun_of}` : "",
  ];
  document.getElementById("run-summary").textContent = parts.filter(Boolean).join(" · ");
  const running = !ENDED.has(run.status);
  document.getElementById("cancel").hidden = !running;
  // Both engines' runs pause and resume (`POST /runs/{id}/pause`, `/resume`).
  document.getElementById("pause").hidden = run.status !== "running";
  document.getElementById("resume").hidden = run.status !== "paused";
  if (isDag()) {
    for (const [name, step] of Object.entries(steps)) paint(canvas, name, step, run.status);
  } else {
    paintQueue(queue, steps, run.execution_order || run.executionOrder || []);
  }
  if (page.selected !== null) showStep(page.selected);
  if (run.error && !page.selected) {
    const where = run.error.step_name ?? run.error.step;
    showMessage(`${run.error.type}: ${run.error.message}${where != null ? ` (step ${where})` : ""}`);
  }
}

function showStep(name) {
  page.selected = name;
  if (isDag()) select(canvas, name);
  else for (const item of queue.children) item.classList.toggle("selected", item.dataset.step === name);
  const step = stepsOf(page.run)[name] || { status: "pending" };
  const shown = JSON.stringify([name, step, page.run.status]);
  if (shown === page.shown) return;
  page.shown = shown;
  panel.replaceChildren(stepPanel({
    name,
    step,
    status: isDag() ? shownStatus(step, page.run.status) : step.status,
    request: page.graph.requests?.[name],
    jumps: page.graph.jumps?.[name],
    run: page.run,
    dag: isDag(),
    act,
  }));
}

/** A call an action button makes; the run's state is read again after it. */
async function act(call, after) {
  try {
    const answer = await withKey(call);
    showMessage("");
    if (after) after(answer);
    refresh();
  } catch (error) {
    showMessage(error.message);
  }
}

let reading = null;
let readAgain = false;
let scheduled = null;

/** Read the run's state again soon: events in a burst share one read, one read at a time. */
function refresh() {
  if (scheduled) return;
  scheduled = setTimeout(() => {
    scheduled = null;
    if (reading) {
      readAgain = true;
      return;
    }
    reading = withKey(() => api(runPath))
      .then((run) => {
        page.run = run;
        render();
      })
      .catch((error) => showMessage(error.message))
      .finally(() => {
        reading = null;
        if (readAgain) {
          readAgain = false;
          refresh();
        }
      });
  }, REFRESH_MS);
}

function onEvent(message) {
  const data = message.data || {};
  const status = EVENT_STATUS[message.event];
  if (status && data.step_name != null && isDag()) {
    const known = stepsOf(page.run)[data.step_name] || {};
    paint(canvas, String(data.step_name), { ...known, status }, page.run.status);
  }
  refresh();
}

async function follow() {
  if (page.following) page.following.abort();
  const following = new AbortController();
  page.following = following;
  const live = document.getElementById("live");
  live.hidden = false;
  try {
    await followEvents(`${runPath}/events`, onEvent, following.signal);
  } catch (error) {
    showMessage(`the run's events could not be followed: ${error.message}`);
  } finally {
    if (page.following === following) live.hidden = true;
    refresh();
  }
}

function legend() {
  const items = STATUSES.map((status) =>
    element("span", { class: "swatch", "data-status": status }, status));
  document.getElementById("legend").replaceChildren(...items);
}

async function load() {
  const [graph, run] = await withKey(() =>
    Promise.all([api(`${runPath}/graph`), api(runPath)]));
  page.graph = graph;
  page.run = run;
  if (graph.engine === "dag") {
    canvas.removeAttribute("hidden");
    queue.hidden = true;
    drawGraph(canvas, graph, showStep);
  } else {
    canvas.setAttribute("hidden", "");
    queue.hidden = false;
    drawQueue(queue, graph, showStep);
  }
  render();
  if (!ENDED.has(run.status)) follow();
}

document.getElementById("cancel").addEventListener("click", () =>
  act(() => api(`${runPath}/cancel`, { method: "POST" })));
document.getElementById("pause").addEventListener("click", () =>
  act(() => api(`${runPath}/pause`, { method: "POST" })));
document.getElementById("resume").addEventListener("click", () =>
  act(() => api(`${runPath}/resume`, { method: "POST" }), () => follow()));
keyButton(() => load().catch((error) => showMessage(error.message)));
legend();
load().catch((error) => showMessage(error.message));
