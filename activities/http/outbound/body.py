"""Reading a response's body no further than a cap (`read_capped`)."""

from __future__ import annotations

import contextlib
import typing
from collections.abc import AsyncGenerator

import httpx

from kernel.errors import ErrorType, WorkflowStationError


class ResponseTooLarge(WorkflowStationError):
    """A response body larger than the caller's cap.

    Attributes:
        limit: The cap in bytes.
        size: The declared Content-Length, or how many bytes had arrived when the cap was
            passed.
        declared: True when `size` comes from the Content-Length header.
    """

    error_type = ErrorType.RESPONSE_TOO_LARGE

    def __init__(self, limit: int, *, size: int, declared: bool) -> None:
        self.limit = limit
        self.size = size
        self.declared = declared
        seen = f"Content-Length: {size}" if declared else f"{size} bytes read before stopping"
        super().__init__(f"response body is larger than the {limit}-byte limit ({seen})")


def _declared_length(response: httpx.Response) -> int | None:
    if response.request.method == "HEAD" or response.status_code in (204, 304):
        return None  # Content-Length describes a body that is not sent
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response's body, refusing to hold more than `max_bytes` of it.

    Content-Length is checked before anything is read; then the (decoded) body is counted as
    it arrives, so an undeclared or lying length is stopped at the first chunk past the cap.
    The response is closed when the cap is passed; otherwise closing it stays with the caller.

    Args:
        response: A response from ``client.send(request, stream=True)`` or ``client.stream``.
        max_bytes: The largest body accepted.

    Returns:
        The body (content-decoded, e.g. gunzipped).

    Raises:
        ResponseTooLarge: The body is larger than `max_bytes`.
    """
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        await response.aclose()
        raise ResponseTooLarge(max_bytes, size=declared, declared=True)
    chunks: list[bytes] = []
    received = 0
    # aclosing: stop httpx's decoder generator now, not whenever it is garbage-collected.
    body = typing.cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    async with contextlib.aclosing(body):
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                await response.aclose()
                raise ResponseTooLarge(max_bytes, size=received, declared=False)
            chunks.append(chunk)
    return b"".join(chunks)
