"""`workflow-station`, the command line (`python -m cli` is the same), and `make dev`.

    workflow-station dev              # Temporal dev server + Web UI, Redis, demo service,
                                      # worker, gateway; submits examples/ until Ctrl-C
    workflow-station example          # submit the examples to an already running gateway
    workflow-station run FILE --follow   # start a pipeline (either kind), draw its steps live
    workflow-station validate FILE    # its plan, or every problem
    workflow-station status ID | list [--status S] | cancel ID
    workflow-station schedule create FILE --every 5m | list | show ID | …   # see cli.schedules
    workflow-station worker | gateway # one process, as a deployment runs it

The gateway commands talk to GATEWAY_URL (default http://127.0.0.1:8000) with the key in
WORKFLOW_STATION_API_KEY, if any.

An existing Temporal (`TEMPORAL_ADDRESS`, or a Temporal profile: see `temporal_profile` in
settings/) or Redis (`REDIS_URL`) is used instead of starting one. Ctrl-C stops every
process this command started, and nothing else.

The package, one idea per module:

* `commands`: the typer app and its commands, `main` (the console script), over the typed
  client `gateway.client`;
* `schedules`: `workflow-station schedule …`, a pipeline run when it is due;
* `render`: how a run is drawn in the terminal (steps table, progress, event updates);
* `stack`: the command lines and the process group of the embedded stack (also used by the
  bench and the tests);
* `dev`: `make dev`, the whole stack in the foreground;
* `examples`: the bundled examples submitted to a running gateway.
"""

from cli.commands import main

__all__ = ["main"]
