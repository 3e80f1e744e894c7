// `/ui/`: the tenant's runs, newest first (`GET /runs`), each a link to its run page.

import { api, clock, cost, duration, element, keyButton, showMessage, withKey } from "./api.js";

async function load() {
  const runs = await withKey(() => api("/runs?limit=100"));
  const rows = runs.map((run) => {
    const link = element("a", { href: `/ui/runs/${encodeURIComponent(run.workflow_id)}` });
    link.textContent = run.workflow_id;
    const status = element("span", { class: "badge", "data-status": run.status });
    status.textContent = run.status;
    return element(
      "tr",
      { "data-run": run.workflow_id },
      element("td", {}, link),
      element("td", {}, run.engine),
      element("td", {}, status),
      element("td", { title: run.started_at || "" }, clock(run.started_at)),
      element("td", {}, run.started_at ? duration(run.started_at, run.finished_at) : ""),
      element("td", {}, cost(run)),
    );
  });
  document.querySelector("#runs tbody").replaceChildren(...rows);
  if (!runs.length) showMessage("No runs yet.", "info");
}

function reload() {
  load().catch((error) => showMessage(error.message));
}

keyButton(reload);
reload();
