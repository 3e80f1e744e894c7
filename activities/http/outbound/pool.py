"""The outbound connection pool: several small httpcore pools side by side (`ShardedPool`)."""

from __future__ import annotations

import typing

import httpcore

#: Connections per shard of the outbound pool (`ShardedPool`).
CONNECTIONS_PER_SHARD = 4


class _CountedStream:
    """A response body that tells its shard when it is closed (its request is over then)."""

    def __init__(self, stream: typing.AsyncIterable[bytes], done: typing.Callable[[], None]):
        self._stream = stream
        self._done: typing.Callable[[], None] | None = done

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


class ShardedPool:
    """Several httpcore pools of `CONNECTIONS_PER_SHARD` connections each; every request
    goes to the one with the fewest requests open.

    httpcore 1.0's pool rescans all its connections for every queued request whenever a
    request ends: with 100 connections busy, a fan-out spent most of the worker's CPU there
    (py-spy: `is_idle`, `_assign_requests_to_connections`). Small pools keep each rescan
    small; the total of connections stays `max_connections`.
    """

    def __init__(self, pools: list[httpcore.AsyncConnectionPool]) -> None:
        self.pools = pools
        self._open = [0] * len(pools)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        shard = min(range(len(self.pools)), key=self._open.__getitem__)
        self._open[shard] += 1

        def done() -> None:
            self._open[shard] -= 1

        try:
            response = await self.pools[shard].handle_async_request(request)
        except BaseException:
            done()
            raise
        response.stream = _CountedStream(
            typing.cast(typing.AsyncIterable[bytes], response.stream), done
        )
        return response

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()

    async def __aenter__(self) -> ShardedPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
