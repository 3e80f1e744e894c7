"""The bundled examples (`examples/`), submitted to a running gateway: what `make dev` shows
once the stack is up, and `workflow-station example`.

Each example is a function of `EXAMPLE_RUNS`, run in turn through the typed client. Whatever
one meets (a 429, a gateway error, an answer it did not expect) is reported as that example's
failure and the next one runs: `make dev` keeps its stack up whatever its examples do.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from activities.llm.models import DEFAULT_MODELS
from cli.devkey import DEV_TENANT, api_key_for, local_dev_api_key
from cli.render import short, step_line
from cli.stack import ROOT
from gateway.client import ClientError, RateLimited, WorkflowStationClient
from settings import Settings

EXAMPLES = ROOT / "examples"


def cost(usd: float | None) -> str:
    """`, cost $0.000029` by the price table (docs/pipelines.md "Cost and budgets"); nothing
    for calls to models it does not price."""
    return "" if usd is None else f", cost ${usd:.6f}"


def load_example(name: str) -> dict[str, Any]:
    """An example's payload, as a user would send the file (`$schema` and all)."""
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return payload


def gateway_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.gateway_port}"


def web_ui(settings: Settings, workflow_id: str) -> str:
    """The run in the Web UI: under `dev/` when `make dev`'s key started it (`cli.devkey`)."""
    dev_key = local_dev_api_key(settings, gateway_url(settings))
    if dev_key and os.environ.get("WORKFLOW_STATION_API_KEY", dev_key) == dev_key:
        workflow_id = f"{DEV_TENANT}/{workflow_id}"
    return (
        f"http://localhost:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{quote(workflow_id, safe='')}"
    )


DAG_EXAMPLE = "dag_pipeline.json"


def run_dag_example(settings: Settings, client: WorkflowStationClient) -> bool:
    """The article digest: five HTTP steps against the demo service, one retried on purpose."""
    payload = load_example(DAG_EXAMPLE)
    payload["workflow_id"] = f"{payload['workflow_id']}-{uuid.uuid4().hex[:8]}"
    print(
        f"\n▶ POST {client.http.base_url}/execute  (examples/{DAG_EXAMPLE},"
        f" {len(payload['STEPS_CONFIG'])} steps)"
    )
    result = client.run(payload)
    progress = result.progress.model_dump()
    print(f"  status={result.status} in {result.execution_time_ms} ms, progress={progress}")
    for name, step in result.steps.items():
        print(f"  - {name:<12} {step.status:<10} attempts={step.attempts}")
    digest = json.dumps(result.outputs.get("digest"), indent=2).replace("\n", "\n  ")
    print("  outputs.digest =", digest)
    print(f"  Web UI: {web_ui(settings, payload['workflow_id'])}")
    return result.status == "completed"


INSTRUCTION_EXAMPLE = "instructions_all_types.json"
#: How long the instruction example may take before `make dev` stops waiting for it.
INSTRUCTION_EXAMPLE_DEADLINE_SECONDS = 900


def llm_provider(settings: Settings) -> str | None:
    """The provider the instruction example can use: OpenAI first, None when neither is set."""
    if settings.openai_api_key or settings.openai_base_url:
        return "openai"
    if settings.anthropic_api_key or settings.anthropic_base_url:
        return "anthropic"
    return None


def run_instruction_example(settings: Settings, client: WorkflowStationClient) -> bool:
    """Every instruction type, against the configured provider, else the stand-in LLM (and
    say exactly what to set for a real one)."""
    provider = llm_provider(settings)
    if provider is None:
        # `make dev` points the worker at the stand-in LLM (`stand_in_environment`).
        print(f"\n▶ examples/{INSTRUCTION_EXAMPLE}: no LLM provider key set, so the stand-in")
        print("  LLM in the demo service answers. For a real model set one of these")
        print("  (environment or .env), then run `make dev` again:")
        print("    OPENAI_API_KEY=sk-...                        OpenAI (model gpt-5-nano)")
        print(
            "    OPENAI_BASE_URL=http://127.0.0.1:11434/v1    any OpenAI-compatible server, such"
            " as a local model server;\n"
            "                                                 also set EXAMPLE_MODEL to a model it"
            " serves"
        )
        print("    ANTHROPIC_API_KEY=sk-ant-...                 Anthropic (model claude-haiku-4-5)")
    payload = load_example(INSTRUCTION_EXAMPLE)
    payload["provider"] = provider or "openai"
    if settings.example_model:
        payload["model"] = settings.example_model
    model = f", model {settings.example_model}" if settings.example_model else ""
    print(
        f"\n▶ POST {client.http.base_url}/  (examples/{INSTRUCTION_EXAMPLE},"
        f" {len(payload['instructions'])} instructions, provider {payload['provider']}{model})"
    )
    instance_id = client.start_instructions(payload).instance_id
    print(f"  following GET {client.http.base_url}/runs/{instance_id}/events")
    shown: set[int] = set()
    deadline = time.monotonic() + INSTRUCTION_EXAMPLE_DEADLINE_SECONDS
    for event in client.events(instance_id):
        if event.event == "end":
            break
        if not event.event.startswith("step."):
            continue
        run = client.get(instance_id).model_dump(mode="json")
        for step in run["steps"]:
            if step["index"] not in shown and step["status"] in ("completed", "failed"):
                shown.add(step["index"])
                print(step_line(step))
        if time.monotonic() > deadline:
            print("  still running after 15 minutes; follow it in the Web UI")
            return False
    status = client.get(instance_id).model_dump(mode="json")
    skipped = [str(step["index"]) for step in status["steps"] if step["status"] == "skipped"]
    usage = status["usage"]
    print(
        f"  status={status['status']}, skipped steps: {', '.join(skipped) or 'none'},"
        f" tokens: {usage['inputTokens']} in / {usage['outputTokens']} out{cost(usage['costUsd'])}"
    )
    if status.get("error"):
        print(f"  error: {status['error']['type']}: {status['error']['message']}")
    print("  output =", short(status.get("output"), 400))
    print(f"  Web UI: {web_ui(settings, instance_id)}")
    return str(status["status"]) == "complete"


LLM_EXAMPLE = "llm_pipeline.json"


def stand_in_environment(settings: Settings) -> dict[str, str]:
    """The worker's environment for the stand-in LLM the demo service serves under `/llm`
    (`examples/llm_stand_in.py`), so the LLM example runs offline; empty when a provider is
    configured."""
    if llm_provider(settings) is not None:
        return {}
    demo = f"http://127.0.0.1:{settings.demo_port}/llm"
    return {"OPENAI_BASE_URL": f"{demo}/v1", "ANTHROPIC_BASE_URL": demo}


def llm_example_payload(settings: Settings) -> dict[str, Any]:
    """The LLM example, for the configured provider (OpenAI first) and `EXAMPLE_MODEL`, calling
    the demo service at `DEMO_PORT`."""
    text = (EXAMPLES / LLM_EXAMPLE).read_text()
    payload: dict[str, Any] = json.loads(
        text.replace("//127.0.0.1:8001/", f"//127.0.0.1:{settings.demo_port}/")
    )
    payload["workflow_id"] = f"{payload['workflow_id']}-{uuid.uuid4().hex[:8]}"
    provider = llm_provider(settings) or "openai"
    model = settings.example_model or DEFAULT_MODELS[provider]
    for step in payload["STEPS_CONFIG"]:
        block = step.get("llm") or step.get("instructions")
        if block is not None:
            block.update(provider=provider, model=model)
    return payload


def run_llm_example(settings: Settings, client: WorkflowStationClient) -> bool:
    """An HTTP step, an `llm` step with an `output_schema`, an `instructions` step and an HTTP
    report, against the configured provider or else the stand-in."""
    payload = llm_example_payload(settings)
    provider = llm_provider(settings)
    who = (
        f"provider {provider}"
        if provider is not None
        else "no LLM provider key set: the stand-in LLM in the demo service answers"
        " (canned answers that show the plumbing, not a model's thinking)"
    )
    print(
        f"\n▶ POST {client.http.base_url}/execute  (examples/{LLM_EXAMPLE}:"
        " http, llm, instructions, http)"
    )
    print(f"  {who}")
    result = client.run(payload)
    print(f"  status={result.status} in {result.execution_time_ms} ms")
    for name, step in result.steps.items():
        tokens = (
            f" {step.provider}/{step.model}"
            f" tokens={step.usage.input_tokens}+{step.usage.output_tokens}"
            if step.usage is not None
            else ""
        )
        print(f"  - {name:<10} {step.type:<12} {step.status:<10}{tokens}".rstrip())
    outputs = result.outputs
    print("  classify.json =", short(json.dumps((outputs.get("classify") or {}).get("json"))))
    print("  advice.output =", short((outputs.get("advice") or {}).get("output"), 200))
    print(
        f"  run tokens: {result.usage.input_tokens} in / {result.usage.output_tokens} out"
        f"{cost(result.usage.cost_usd)}"
    )
    if result.error is not None:
        print(f"  error: {result.error.type}: {result.error.message}")
    print(
        f"  Web UI: {web_ui(settings, payload['workflow_id'])}"
        " (the advise step's instruction run is its child)"
    )
    return result.status == "completed"


#: The examples `make dev` runs, in order; each says whether it went as it should.
EXAMPLE_RUNS: list[Callable[[Settings, WorkflowStationClient], bool]] = [
    run_dag_example,
    run_instruction_example,
    run_llm_example,
]


def submit_examples(settings: Settings) -> bool:
    """Run the bundled examples through the gateway and print what a user should see; True
    when every one went as it should. A failing example is reported, never raised."""
    ok = True
    with WorkflowStationClient(
        gateway_url(settings), api_key_for(settings, gateway_url(settings)), timeout=120
    ) as client:
        for example in EXAMPLE_RUNS:
            try:
                ok = example(settings, client) and ok
            except RateLimited as exc:
                ok = False
                print(
                    f"  ✗ {exc}: another client is using this tenant's request rate"
                    " (TENANT_REQUESTS_PER_SECOND); the stack keeps running"
                )
            except (ClientError, KeyError, ValueError) as exc:
                ok = False
                print(f"  ✗ example failed: {type(exc).__name__}: {exc}; the stack keeps running")
    return ok
