"""The one way any process connects to Temporal, and what it expects to find there.

Connection options follow Temporal's environment configuration (issue #11): environment >
profile file > defaults, as Temporal's own tools have it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from dotenv import dotenv_values
from temporalio.client import Client, Interceptor
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime

from settings.config import Settings
from settings.converter import data_converter

#: The dev server's default transfer poll rate (20/s) adds ~50 ms to every activity round
#: trip; this keeps a sequential step around 10 ms. Eager activity execution hands a regular
#: activity the workflow task schedules straight back to the worker that completed the task,
#: in the server's answer, when that worker polls the activity's queue and has a free slot:
#: one trip through matching and one activity poll fewer per step, while the activity stays
#: a regular one (recorded, timed out, heartbeated and retried by the server). Used by
#: `make dev`, tests and compose.
LATENCY_TUNED_DYNAMIC_CONFIG = {
    "history.transferProcessorMaxPollRPS": "1000",
    "history.timerProcessorMaxPollRPS": "1000",
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "system.enableActivityEagerExecution": "true",
}


#: Where `temporal_connect_config` looks for TEMPORAL_* variables besides the environment,
#: as Settings does (the environment wins over the file).
ENV_FILE = Path(".env")
#: Truthy spellings of a boolean TEMPORAL_* variable.
_TRUE = frozenset({"1", "true", "yes", "on"})


def temporal_environment(env_file: Path | None = ENV_FILE) -> dict[str, str]:
    """The environment Temporal's configuration is read from: the process environment over
    the TEMPORAL_* entries of `env_file` (`.env`, which Settings reads but
    `temporalio.envconfig` does not). Empty values count as unset, as in Settings."""
    from_file: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        from_file = {
            name: value
            for name, value in dotenv_values(env_file).items()
            if name.startswith("TEMPORAL_") and value
        }
    return from_file | {name: value for name, value in os.environ.items() if value}


def temporal_profile(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """What is configured for the Temporal connection, without defaults.

    Precedence, as Temporal's own tools have it: environment > profile file > defaults.

    - Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS,
      TEMPORAL_TLS_* (client cert and key, server CA, server name; `*_PATH` or `*_DATA`) and
      TEMPORAL_GRPC_META_*, from the process environment or `.env`. Settings' own
      `temporal_address` and `temporal_namespace`, when given (in code too), are this level.
    - Profile: TEMPORAL_PROFILE (default `default`) in the TOML file TEMPORAL_CONFIG_FILE
      names, else Temporal's standard one (`~/.config/temporalio/temporal.toml`).
    - Defaults (`temporal_connect_config`): 127.0.0.1:TEMPORAL_PORT, namespace `default`.

    An API key turns TLS on (Temporal Cloud); `TEMPORAL_TLS=false` turns it off.
    """
    env = dict(temporal_environment() if environ is None else environ)
    given = settings.model_fields_set
    if "temporal_address" in given and settings.temporal_address:
        env["TEMPORAL_ADDRESS"] = settings.temporal_address
    if "temporal_namespace" in given:
        env["TEMPORAL_NAMESPACE"] = settings.temporal_namespace
    if env.get("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "").strip().lower() in _TRUE:
        # The Python SDK cannot turn verification off; connecting would fail on the name.
        raise ValueError(
            "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the Python SDK: set"
            " TEMPORAL_TLS_SERVER_NAME to a name the server's certificate carries instead"
        )
    # Strict: a misspelt key in the profile (say `server_ca_cert` for `server_ca_cert_path`)
    # stops the process naming it, instead of connecting without what it meant.
    profile = ClientConfigProfile.load(override_env_vars=env, config_file_strict=True)
    return profile.to_client_connect_config()


def temporal_connect_config(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """`Client.connect` arguments: `temporal_profile` with the defaults filled in (the
    embedded dev server `make dev` starts on TEMPORAL_PORT, namespace `default`)."""
    config = temporal_profile(settings, environ)
    config.setdefault("target_host", f"127.0.0.1:{settings.temporal_port}")
    config.setdefault("namespace", "default")
    return config


def uses_embedded_temporal(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    """No Temporal address is configured anywhere: `make dev` starts its own dev server."""
    return "target_host" not in temporal_profile(settings, environ)


async def connect_temporal(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect to Temporal as `temporal_connect_config` says, with `data_converter(settings)`.

    The worker, the gateway, the CLI, the benchmarks and the tests connect through here, so
    connection options (address, namespace, TLS, API key, profiles) and payload storage are
    set up in one place. `interceptors` (tracing, the worker's metrics) and `runtime` (the
    worker's metrics endpoint) are the process's telemetry, from `kernel.telemetry`.
    """
    return await Client.connect(
        **temporal_connect_config(settings, environ),
        data_converter=data_converter(settings),
        interceptors=interceptors,
        runtime=runtime,
    )
