"""A small offline HTTP service for the bundled examples: `make dev` serves it on :8001.

It stands in for the APIs a real pipeline calls (a document store, an LLM-style summariser,
a classifier, a shopping list), so the examples run on a machine with no internet. Under
`/llm` it serves the stand-in OpenAI and Anthropic APIs (`examples/llm_stand_in.py`), which
`make dev` points the worker at when no LLM provider is configured.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel

from examples import llm_stand_in

app = FastAPI(title="Workflow Station demo service")
app.mount("/llm", llm_stand_in.app)

ARTICLES = {
    "temporal": {
        "title": "Durable execution",
        "paragraphs": [
            "Durable execution lets a program survive crashes: every step is recorded, and a"
            " restarted worker resumes where the last one stopped.",
            "Retries, timeouts and backoff become configuration instead of hand-written loops,"
            " and every run can be inspected after the fact.",
        ],
    },
}
GROCERIES = ["apple", "carrot", "pear", "spinach", "banana", "leek"]
_flaky_calls: Counter[str] = Counter()


class TextIn(BaseModel):
    text: Any = ""
    delay_ms: int = 0


@app.get("/articles/{slug}")
async def article(slug: str) -> dict[str, Any]:
    return ARTICLES.get(slug, {"title": slug, "paragraphs": [f"No article named {slug}."]})


@app.get("/groceries")
async def groceries() -> dict[str, Any]:
    """A list to classify (`examples/llm_pipeline.json`)."""
    return {"items": GROCERIES}


@app.post("/summarize")
async def summarize(body: TextIn) -> dict[str, Any]:
    """Answers in the OpenAI chat-completion shape, so its outputs get the message text."""
    await asyncio.sleep(body.delay_ms / 1000)
    text = body.text if isinstance(body.text, str) else " ".join(map(str, body.text))
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return {
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "model": "demo-summarizer",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": first},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(text.split()),
            "completion_tokens": len(first.split()),
            "total_tokens": len(text.split()) + len(first.split()),
        },
    }


@app.post("/keywords")
async def keywords(body: TextIn) -> dict[str, Any]:
    await asyncio.sleep(body.delay_ms / 1000)
    words = re.findall(r"[a-z]{5,}", str(body.text).lower())
    return {"keywords": [word for word, _ in Counter(words).most_common(3)]}


@app.post("/flaky/{name}")
async def flaky(name: str, response: Response, failures: int = 1) -> dict[str, Any]:
    """Fails `failures` times with 503 per name, then succeeds: shows retries in the Web UI."""
    _flaky_calls[name] += 1
    if _flaky_calls[name] <= failures:
        response.status_code = 503
        return {"error": "temporarily unavailable", "call": _flaky_calls[name]}
    return {"ok": True, "calls": _flaky_calls[name]}


@app.post("/report")
async def report(body: dict[str, Any]) -> dict[str, Any]:
    return {"report": body}
