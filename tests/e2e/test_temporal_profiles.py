"""Connecting through Temporal's environment configuration for real: a profile in a TOML file
pointing at the dev server, and mutual TLS (client certificate, server CA, server name)
through a TLS terminator in front of it (`tests/fakes/tls_proxy.py`: the dev server has no
TLS of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from settings import Settings, close_data_converter, connect_temporal
from tests.conftest import Engine, Targets, unique
from tests.fakes.tls_proxy import SERVER_NAME, MutualTlsProxy, make_certificates
from workflows.dag.models import DagRunInput
from workflows.dag.workflow import DagWorkflow


def _settings(engine: Engine) -> Settings:
    """No Temporal address or namespace of its own: both come from the profile."""
    return Settings(_env_file=None, redis_url=engine.settings.redis_url)  # type: ignore[call-arg]


async def _run_one_step(client: Client, engine: Engine, targets: Targets) -> str:
    """A one-step DAG run started through `client` on the engine's workers; its status."""
    run = DagRunInput.model_validate(
        {
            "workflow_id": unique("profile"),
            "STEPS_CONFIG": [
                {"step_name": "a", "usid": "u", "service_url": f"{targets.url}/echo/profile"}
            ],
        }
    )
    run.engine.task_queue = engine.settings.task_queue
    result = await client.execute_workflow(
        DagWorkflow.run, run, id=run.workflow_id, task_queue=engine.settings.task_queue
    )
    return result.status


async def test_a_profile_file_connects_to_its_server(
    dev_engine: Engine, targets: Targets, tmp_path: Path
) -> None:
    address = dev_engine.client.service_client.config.target_host
    config = tmp_path / "temporal.toml"
    config.write_text(
        f'[profile.default]\naddress = "127.0.0.1:1"\n\n'
        f'[profile.staging]\naddress = "{address}"\nnamespace = "default"\n'
    )
    environ = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "staging"}
    client = await connect_temporal(_settings(dev_engine), environ)
    try:
        assert client.service_client.config.target_host == address
        assert await _run_one_step(client, dev_engine, targets) == "completed"
    finally:
        await close_data_converter(client.data_converter)


async def test_mutual_tls_from_a_profile_and_from_the_environment(
    dev_engine: Engine, targets: Targets, tmp_path: Path
) -> None:
    certificates = make_certificates(tmp_path)
    upstream = dev_engine.client.service_client.config.target_host
    async with MutualTlsProxy(certificates, upstream).running() as proxy:
        config = tmp_path / "temporal.toml"
        config.write_text(
            f'[profile.default]\naddress = "{proxy.address}"\nnamespace = "default"\n'
            f'[profile.default.tls]\nserver_name = "{SERVER_NAME}"\n'
            f'server_ca_cert_path = "{certificates.ca}"\n'
            f'client_cert_path = "{certificates.client_cert}"\n'
            f'client_key_path = "{certificates.client_key}"\n'
        )
        from_file = await connect_temporal(
            _settings(dev_engine), {"TEMPORAL_CONFIG_FILE": str(config)}
        )
        from_env = await connect_temporal(
            _settings(dev_engine),
            {
                "TEMPORAL_CONFIG_FILE": str(tmp_path / "none.toml"),
                "TEMPORAL_ADDRESS": proxy.address,
                "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certificates.ca),
                "TEMPORAL_TLS_CLIENT_CERT_DATA": certificates.client_cert.read_text(),
                "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certificates.client_key),
            },
        )
        try:
            for client in (from_file, from_env):
                assert await _run_one_step(client, dev_engine, targets) == "completed"
        finally:
            for client in (from_file, from_env):
                await close_data_converter(client.data_converter)
        assert proxy.clients and set(proxy.clients) == {"workflow-station-worker"}

        # The terminator refuses a client without a certificate: the test above is mTLS.
        with pytest.raises(RuntimeError):
            await connect_temporal(
                _settings(dev_engine),
                {
                    "TEMPORAL_CONFIG_FILE": str(tmp_path / "none.toml"),
                    "TEMPORAL_ADDRESS": proxy.address,
                    "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
                    "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certificates.ca),
                },
            )
