"""The gateway's HTTP API as the commands use it: requests, errors, the run's event stream."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx


class GatewayError(Exception):
    """The gateway answered with an error, or could not be reached."""


class Gateway:
    """The gateway's HTTP API, as the commands use it."""

    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Reads wait for runs; a stream may stay quiet between events (pinged every 15 s).
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(60))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayError(f"cannot reach the gateway at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise GatewayError(f"HTTP {response.status_code}: {_detail(response)}")
        return response.json()

    def events(self, workflow_id: str, after: int = 0) -> Iterator[tuple[str, Any]]:
        """The run's SSE stream as (event, data), until the gateway closes it."""
        path = f"/runs/{quote(workflow_id, safe='')}/events"
        headers = {"Last-Event-ID": str(after)} if after else {}
        with self.http.stream("GET", path, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise GatewayError(f"HTTP {response.status_code}: {_detail(response)}")
            yield from read_sse(response.iter_lines())


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text
    return detail if isinstance(detail, str) else json.dumps(detail)


def read_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Server-Sent Events as (event name, parsed data); comments (pings) are skipped."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def run_path(workflow_id: str) -> str:
    return f"/runs/{quote(workflow_id, safe='')}"
