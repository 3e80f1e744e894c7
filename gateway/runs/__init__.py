"""Runs read back from Temporal (and Redis), whichever engine ran them.

One idea a module:

- `service`: `RunStatusService`, a tenant's runs as the routes read them;
- `engine`: `RunEngine`, what differs between the engines when a run is read;
- `dag`, `instructions`: each engine's `RunEngine` (`DAG_RUNS`, `INSTRUCTION_RUNS`);
- `published`: the status workers publish to Redis, and the queued status the gateway does;
- `outbox`: a DAG run's webhook events, from its outbox;
- `listing`: `GET /runs`, from Temporal's visibility store;
- `reads`: concurrent readers of one run share one read.

Services raise `gateway.errors` exceptions, never HTTP ones; the app maps them to responses.
"""
