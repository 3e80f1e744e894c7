"""temporal-compose.yml cannot run here (no Docker): check that it agrees with the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cli.stack import gateway_command
from kernel.search import SEARCH_ATTRIBUTES
from settings import LATENCY_TUNED_DYNAMIC_CONFIG, Settings

COMPOSE = Path(__file__).resolve().parents[2] / "temporal-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgresql",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "temporal-ui-local",
        "redis",
        "worker",
        "gateway",
    }
    assert compose["services"]["temporal"]["environment"]["DB"] == "postgres12"
    assert compose["services"]["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgresql"


def test_only_the_gateway_is_published(compose: dict[str, Any]) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    services = compose["services"]
    published = {
        name: service["ports"]
        for name, service in services.items()
        if service.get("ports") and not service.get("profiles")
    }
    assert published == {"gateway": [f"{defaults.gateway_port}:8000"]}
    # The UI's opt-in twin listens on loopback only.
    assert services["temporal-ui-local"]["profiles"] == ["ui"]
    assert services["temporal-ui-local"]["ports"] == [f"127.0.0.1:{defaults.temporal_ui_port}:8080"]


def test_backends_sit_on_an_internal_network(compose: dict[str, Any]) -> None:
    assert compose["networks"]["internal"] == {"internal": True}
    services = compose["services"]
    for name in ("postgresql", "temporal", "temporal-setup", "temporal-ui", "redis"):
        assert services[name]["networks"] == ["internal"], name
    assert set(services["worker"]["networks"]) == {"internal", "egress"}
    assert set(services["gateway"]["networks"]) == {"internal", "edge"}


def test_redis_requires_a_password_and_the_apps_send_it(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == "${REDIS_PASSWORD:?set REDIS_PASSWORD}"
    url = compose["x-app-environment"]["REDIS_URL"]
    assert url == "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD}@redis:6379/0"


@pytest.mark.parametrize("service", ["worker", "gateway"])
def test_app_environment_is_read_by_settings(compose: dict[str, Any], service: str) -> None:
    environment = compose["services"][service]["environment"]
    unknown = sorted(name for name in environment if name.lower() not in Settings.model_fields)
    assert unknown == []
    resolved = Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{name.lower(): value for name, value in environment.items() if "${" not in value},
    )
    host, port = resolved.effective_temporal_address.split(":")
    assert host in compose["services"] and port == "7233"
    assert resolved.task_queue == Settings(_env_file=None).task_queue  # type: ignore[call-arg]
    assert resolved.endpoint_workers == Settings(_env_file=None).endpoint_workers  # type: ignore[call-arg]


def test_gateway_listens_on_the_published_port(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    command = gateway["command"]
    assert command[command.index("--port") + 1] == gateway["environment"]["GATEWAY_PORT"]
    assert gateway["ports"] == [f"{gateway['environment']['GATEWAY_PORT']}:8000"]


def test_gateway_outlasts_its_clients_idle_connections(compose: dict[str, Any]) -> None:
    """A gateway that closes an idle connection when its client's pool does races the client
    reusing it: the request is lost ("Server disconnected without sending a response")."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    command = compose["services"]["gateway"]["command"]
    keep_alive = int(command[command.index("--timeout-keep-alive") + 1])
    assert keep_alive == defaults.gateway_keep_alive_seconds
    assert keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]
    started = gateway_command(defaults, 8000)
    assert started[started.index("--timeout-keep-alive") + 1] == str(keep_alive)


def test_search_attributes_are_registered(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["temporal-setup"]["command"])
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"--name {name} --type {kind}" in command


def test_dynamic_config_is_latency_tuned(compose: dict[str, Any]) -> None:
    content = yaml.safe_load(compose["configs"]["temporal-dynamic-config"]["content"])
    # YAML reads `true` as a boolean, which the dev server's flag spells `true`.
    values = {key: value[0]["value"] for key, value in content.items()}
    assert {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in values.items()
    } == LATENCY_TUNED_DYNAMIC_CONFIG
    mounted = compose["services"]["temporal"]["configs"][0]["target"]
    assert mounted == compose["services"]["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]


def test_images_are_built_from_this_repo(compose: dict[str, Any]) -> None:
    # The Dockerfile itself is checked in test_artefact.py.
    for service in ("worker", "gateway"):
        build = compose["services"][service]["build"]
        assert build == {"context": ".", "dockerfile": "Dockerfile"}, service
    assert compose["services"]["worker"]["command"][:3] == ["python", "-m", "worker"]


def test_the_gateway_healthcheck_asks_liveness_on_its_port(compose: dict[str, Any]) -> None:
    from gateway.app import create_app

    gateway = compose["services"]["gateway"]
    probe = " ".join(gateway["healthcheck"]["test"])
    port = gateway["environment"]["GATEWAY_PORT"]
    assert f"http://127.0.0.1:{port}/health/live" in probe
    assert "/health/live" in create_app(Settings(_env_file=None)).openapi()["paths"]  # type: ignore[call-arg]


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60}
    return float(duration[:-1]) * units[duration[-1]]


def test_compose_waits_for_the_worker_to_drain(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    drain = float(worker["environment"]["WORKER_DRAIN_SECONDS"])
    # SIGKILL only once running activities had their drain time, and a few seconds more.
    assert _seconds(worker["stop_grace_period"]) >= drain + 10
