"""Worker start-up against a Temporal server that lacks the project's search attributes."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from cli import BIN
from settings import SEARCH_ATTRIBUTES
from tests.conftest import TEST_DATA_CONVERTER
from worker import ensure_search_attributes


async def test_missing_search_attributes_are_registered_once() -> None:
    # A server started without them, like an existing one given by TEMPORAL_ADDRESS.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=TEST_DATA_CONVERTER
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
