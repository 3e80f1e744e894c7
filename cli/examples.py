"""The bundled examples (`examples/`), submitted to a running gateway: what `make dev` shows
once the stack is up, and `workflow-station example`."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from cli.devkey import DEV_TENANT, local_dev_api_key
from cli.render import short, step_line
from cli.stack import ROOT
from settings import Settings

EXAMPLES = ROOT / "examples"


def gateway_headers(settings: Settings) -> dict[str, str]:
    """The key the examples send: WORKFLOW_STATION_API_KEY, else `make dev`'s."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    key = os.environ.get("WORKFLOW_STATION_API_KEY") or local_dev_api_key(settings, gateway)
    return {"Authorization": f"Bearer {key}"} if key else {}


def web_ui_link(settings: Settings, workflow_id: str) -> str:
    """The run in the Web UI: under `dev/` when `make dev`'s key started it (`cli.devkey`)."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    dev_key = local_dev_api_key(settings, gateway)
    if dev_key and os.environ.get("WORKFLOW_STATION_API_KEY", dev_key) == dev_key:
        workflow_id = f"{DEV_TENANT}/{workflow_id}"
    return (
        f"http://localhost:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{quote(workflow_id, safe='')}"
    )


def submit_examples(settings: Settings) -> bool:
    """Run the bundled examples through the gateway and print what a user should see."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    payload: dict[str, Any] = json.loads((EXAMPLES / "dag_pipeline.json").read_text())
    payload["workflow_id"] = f"{payload['workflow_id']}-{uuid.uuid4().hex[:8]}"
    print(
        f"\n▶ POST {gateway}/execute  (examples/dag_pipeline.json, {len(payload['STEPS_CONFIG'])}"
        " steps)"
    )
    with httpx.Client(timeout=120, headers=gateway_headers(settings)) as http:
        response = http.post(f"{gateway}/execute", json=payload)
    result = response.json()
    ui = web_ui_link(settings, payload["workflow_id"])
    print(
        f"  HTTP {response.status_code}: status={result.get('status')}"
        f" in {result.get('execution_time_ms')} ms, progress={result.get('progress')}"
    )
    for name, step in (result.get("steps") or {}).items():
        print(f"  - {name:<12} {step['status']:<10} attempts={step['attempts']}")
    print(
        "  outputs.digest =",
        json.dumps(result.get("outputs", {}).get("digest"), indent=2).replace("\n", "\n  "),
    )
    print(f"  Web UI: {ui}")
    dag_ok = result.get("status") == "completed"
    return submit_instruction_example(settings) and dag_ok


INSTRUCTION_EXAMPLE = "instructions_all_types.json"


def llm_provider(settings: Settings) -> str | None:
    """The provider the instruction example can use: OpenAI first, None when neither is set."""
    if settings.openai_api_key or settings.openai_base_url:
        return "openai"
    if settings.anthropic_api_key or settings.anthropic_base_url:
        return "anthropic"
    return None


def submit_instruction_example(settings: Settings) -> bool:
    """Run the every-instruction-type example when an LLM provider is configured; otherwise
    say exactly what to set."""
    provider = llm_provider(settings)
    if provider is None:
        print(f"\n▶ Skipping examples/{INSTRUCTION_EXAMPLE}: no LLM provider is configured.")
        print("  Set one of these (environment or .env), then run `make dev` again:")
        print("    OPENAI_API_KEY=sk-...                        OpenAI (model gpt-5-nano)")
        print(
            "    OPENAI_BASE_URL=http://127.0.0.1:11434/v1    any OpenAI-compatible server, such"
            " as a local model server;\n"
            "                                                 also set EXAMPLE_MODEL to a model it"
            " serves"
        )
        print("    ANTHROPIC_API_KEY=sk-ant-...                 Anthropic (model claude-haiku-4-5)")
        return True
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    payload: dict[str, Any] = json.loads((EXAMPLES / INSTRUCTION_EXAMPLE).read_text())
    payload["provider"] = provider
    if settings.example_model:
        payload["model"] = settings.example_model
    model = f", model {settings.example_model}" if settings.example_model else ""
    print(
        f"\n▶ POST {gateway}/  (examples/{INSTRUCTION_EXAMPLE}, {len(payload['instructions'])}"
        f" instructions, provider {provider}{model})"
    )
    with httpx.Client(timeout=30, headers=gateway_headers(settings)) as http:
        response = http.post(f"{gateway}/", json=payload)
        if response.status_code != 200:
            print(f"  HTTP {response.status_code}: {response.text}")
            return False
        instance_id = response.json()["instanceId"]
        print(f"  polling GET {gateway}/?instanceId={instance_id}")
        shown: set[int] = set()
        deadline = time.monotonic() + 900
        while True:
            status = http.get(f"{gateway}/", params={"instanceId": instance_id}).json()
            for index in status["executionOrder"]:
                step = status["steps"][index]
                if index not in shown and step["status"] in ("completed", "failed"):
                    shown.add(index)
                    print(step_line(step))
            if status["status"] in ("complete", "errored", "terminated"):
                break
            if time.monotonic() > deadline:
                print("  still running after 15 minutes; follow it in the Web UI")
                return False
            time.sleep(0.5)
    skipped = [str(step["index"]) for step in status["steps"] if step["status"] == "skipped"]
    usage = status["usage"]
    print(
        f"  status={status['status']}, skipped steps: {', '.join(skipped) or 'none'},"
        f" tokens: {usage['inputTokens']} in / {usage['outputTokens']} out"
    )
    if status.get("error"):
        print(f"  error: {status['error']['type']}: {status['error']['message']}")
    print("  output =", short(status.get("output"), 400))
    print(f"  Web UI: {web_ui_link(settings, instance_id)}")
    return str(status["status"]) == "complete"
