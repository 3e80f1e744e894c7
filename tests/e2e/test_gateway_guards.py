"""The gateway's smaller guards, through the real app: names reserved for the engine's own
Redis keys, the open gateway's loopback check on the address a request actually came in on,
health answers that keep internal detail from callers without a key, and the codec
endpoint's token length and rate."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from gateway.app import create_app
from settings import Settings
from tests.conftest import Engine, Gateway, unique
from tests.fakes.targets import free_port, serve

KEY = "guard-key-0123456789abcdef"


def test_a_tenant_cannot_be_named_like_the_engines_own_keys() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Settings(_env_file=None, gateway_api_keys=[f"workflow-station:{KEY}"])  # type: ignore[call-arg]


@pytest.mark.parametrize("namespace", ["workflow-station", "workflow-station:status"])
async def test_a_namespace_cannot_reach_the_engines_own_keys(
    gateway: Gateway, namespace: str
) -> None:
    body = {
        "workflow_id": unique("ns"),
        "namespace": namespace,
        "STEPS_CONFIG": [{"step_name": "a", "usid": "u", "service_url": "https://example.com"}],
    }
    response = await gateway.http.post("/execute", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "namespace"]


def test_a_short_codec_token_stops_the_settings() -> None:
    with pytest.raises(ValidationError, match="CODEC_AUTH_TOKEN is shorter than 32"):
        Settings(_env_file=None, codec_auth_token=SecretStr("short-token-1234"))  # type: ignore[call-arg]
    Settings(_env_file=None, codec_auth_token=SecretStr("t" * 32))  # type: ignore[call-arg]


async def test_an_open_gateway_answers_only_what_came_in_on_loopback(dev_engine: Engine) -> None:
    # GATEWAY_HOST says loopback, but the process was bound wider (`uvicorn --host 0.0.0.0`):
    # the address each request arrived on is what counts.
    settings = dev_engine.settings.model_copy(update={"gateway_allowed_hosts": ["*"]})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        for base, status in (("http://10.1.2.3:8000", 403), ("http://127.0.0.1:8000", 404)):
            async with httpx.AsyncClient(transport=transport, base_url=base) as http:
                response = await http.get(f"/runs/{unique('none')}")
                assert response.status_code == status, (base, response.text)
                if status == 403:
                    assert "GATEWAY_API_KEYS" in response.json()["detail"]


async def test_health_keeps_internal_detail_from_callers_without_a_key(
    dev_engine: Engine,
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = dev_engine.settings.model_copy(
        update={"gateway_api_keys": [f"guard:{KEY}"], "redis_url": dead_redis}
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        anonymous = (await http.get("/health")).json()
        keyed = (await http.get("/health", headers={"Authorization": f"Bearer {KEY}"})).json()
    assert anonymous["redis"] == "down"
    assert "127.0.0.1" not in str(anonymous) and "Error" not in str(anonymous)
    assert keyed["redis"].startswith("down: ") and "Error" in keyed["redis"]


async def test_the_codec_endpoint_is_rate_limited(dev_engine: Engine) -> None:
    settings = dev_engine.settings.model_copy(update={"codec_requests_per_second": 3})
    body: dict[str, Any] = {"payloads": [{"metadata": {}, "data": "e30="}]}
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        answers = await asyncio.gather(*(http.post("/codec/decode", json=body) for _ in range(12)))
    codes = [answer.status_code for answer in answers]
    # 3 a second: 12 at once pass at most 6, whichever windows they fall in.
    assert set(codes) == {200, 429} and codes.count(429) >= 6
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert "CODEC_REQUESTS_PER_SECOND" in refused.json()["detail"]
    assert refused.headers["retry-after"]
