"""The LLM pipeline example (`examples/llm_pipeline.json`): an HTTP step, an `llm` step with
an `output_schema`, an `instructions` step and an HTTP report, run after the other examples.

With no LLM provider configured, `make dev` points the worker at the stand-in LLM the demo
service serves under `/llm` (`examples/llm_stand_in.py`), so the example runs offline; with a
key it runs against that provider.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from activities.llm.models import DEFAULT_MODELS
from cli.examples import EXAMPLES, llm_provider
from cli.render import short
from settings import Settings

LLM_EXAMPLE = "llm_pipeline.json"


def stand_in_environment(settings: Settings) -> dict[str, str]:
    """The worker's environment for the stand-in LLM; empty when a provider is configured."""
    if llm_provider(settings) is not None:
        return {}
    demo = f"http://127.0.0.1:{settings.demo_port}/llm"
    return {"OPENAI_BASE_URL": f"{demo}/v1", "ANTHROPIC_BASE_URL": demo}


def llm_example_payload(settings: Settings) -> dict[str, Any]:
    """The example, for the configured provider (OpenAI first) and `EXAMPLE_MODEL`, calling
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


def submit_llm_pipeline(settings: Settings) -> bool:
    """Run the example through the gateway and print its steps, tokens and report; a failure
    is printed, never raised, so the stack keeps running."""
    gateway = f"http://127.0.0.1:{settings.gateway_port}"
    payload = llm_example_payload(settings)
    provider = llm_provider(settings)
    who = (
        f"provider {provider}"
        if provider is not None
        else "no LLM provider key set: the stand-in LLM in the demo service answers"
        " (canned answers that show the plumbing, not a model's thinking)"
    )
    print(f"\n▶ POST {gateway}/execute  (examples/{LLM_EXAMPLE}: http, llm, instructions, http)")
    print(f"  {who}")
    try:
        with httpx.Client(timeout=300) as http:
            response = http.post(f"{gateway}/execute", json=payload)
        result = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"  failed: {exc}")
        return False
    if response.status_code != 200 or not isinstance(result, dict):
        print(f"  HTTP {response.status_code}: {short(response.text, 400)}")
        return False
    print(f"  HTTP 200: status={result.get('status')} in {result.get('execution_time_ms')} ms")
    for name, step in (result.get("steps") or {}).items():
        usage = step.get("usage") or {}
        tokens = (
            f" {step.get('provider')}/{step.get('model')}"
            f" tokens={usage.get('input_tokens', 0)}+{usage.get('output_tokens', 0)}"
            if step.get("usage")
            else ""
        )
        line = f"  - {name:<10} {step.get('type', 'http'):<12} {step['status']:<10}{tokens}"
        print(line.rstrip())
    outputs = result.get("outputs") or {}
    print("  classify.json =", short(json.dumps((outputs.get("classify") or {}).get("json"))))
    print("  advice.output =", short((outputs.get("advice") or {}).get("output"), 200))
    total = result.get("usage") or {}
    print(f"  run tokens: {total.get('input_tokens', 0)} in / {total.get('output_tokens', 0)} out")
    if result.get("error"):
        print(f"  error: {result['error'].get('type')}: {result['error'].get('message')}")
    print(
        f"  Web UI: http://localhost:{settings.temporal_ui_port}/namespaces/"
        f"{settings.temporal_namespace}/workflows/{payload['workflow_id']}"
        " (the advise step's instruction run is its child)"
    )
    return result.get("status") == "completed"
