"""The search attributes every run carries, defined once for the gateway, the worker and the
webhook outbox.

The gateway sets them when it starts a run, so runs can be found in the Web UI and with
`temporal workflow list --query "WorkflowStationEngine='dag'"`; the worker registers them on
a dev server that lacks them; an outbox copies its run's, with `ENGINE` saying "webhooks".
`SearchAttributeKey` is plain data, so workflow code may import this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.common import SearchAttributeKey

#: Which engine runs it: `dag`, `instructions`, `endpoint` (or `webhooks` for an outbox).
ENGINE = SearchAttributeKey.for_keyword("WorkflowStationEngine")
#: The DAG run's `namespace` (an endpoint call's worker name; `default` for instructions).
NAMESPACE = SearchAttributeKey.for_keyword("WorkflowStationNamespace")
#: The id the client knows the run by (its Temporal id without the tenant's prefix).
SEED_ID = SearchAttributeKey.for_keyword("WorkflowStationId")
#: The tenant whose run it is.
TENANT = SearchAttributeKey.for_keyword("WorkflowStationTenant")
#: A rerun's source: the id (as the client knows it) of the run it reran.
RERUN_OF = SearchAttributeKey.for_keyword("WorkflowStationRerunOf")

#: Every attribute by name, with its type as `temporal operator search-attribute create
#: --type` names it.
SEARCH_ATTRIBUTES: Mapping[str, str] = {
    key.name: "Keyword" for key in (ENGINE, NAMESPACE, SEED_ID, TENANT, RERUN_OF)
}
