"""Worker start-up against a Temporal server that lacks the project's search attributes."""

from __future__ import annotations

import logging

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from cli.stack import BIN
from kernel.search import SEARCH_ATTRIBUTES
from tests.conftest import make_settings
from worker import check_blob_ttl, ensure_search_attributes


async def test_missing_search_attributes_are_registered_once(converter: DataConverter) -> None:
    # A server started without them, like an existing one given by TEMPORAL_ADDRESS.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=converter
    )
    try:
        request = ListSearchAttributesRequest(namespace="default")
        before = await env.client.operator_service.list_search_attributes(request)
        assert not set(SEARCH_ATTRIBUTES) & set(before.custom_attributes)
        await ensure_search_attributes(env.client, "default")
        await ensure_search_attributes(env.client, "default")  # idempotent
        after = await env.client.operator_service.list_search_attributes(request)
        assert set(SEARCH_ATTRIBUTES) <= set(after.custom_attributes)
    finally:
        await env.shutdown()


async def test_a_blob_ttl_shorter_than_runs_plus_retention_is_warned_about(
    dev_env: WorkflowEnvironment, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workflow_station.worker")
    await check_blob_ttl(dev_env.client, make_settings(dev_env.client, redis_url))
    assert "PAYLOAD_BLOB_TTL_SECONDS" not in caplog.text  # the default outlives them
    short = make_settings(dev_env.client, redis_url, payload_blob_ttl_seconds=3 * 24 * 3600)
    await check_blob_ttl(dev_env.client, short)
    assert "PAYLOAD_BLOB_TTL_SECONDS=259200 is shorter than the longest run" in caplog.text
