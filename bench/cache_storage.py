"""What the result cache keeps in Redis for many requests with the same large answer: 100
entries whose HTTP body is the same 1 MB page (`activities.store.cache`), each with its own
URL, kept on a Redis of its own.

    .venv/bin/python bench/cache_storage.py          # --entries N, --body-kb KB

Prints Redis's memory (`used_memory`) for the entries and the keys they take, with every
field kept inline in each entry (as before the cache kept large fields once) and as kept now.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.store import cache  # noqa: E402
from cli.stack import redis_command, wait_for_port  # noqa: E402
from tests.fakes.targets import free_port  # noqa: E402


async def used_by_entries(
    redis: Redis, entries: int, body_kb: int, inline: bool
) -> tuple[int, int]:
    """(bytes of `used_memory` the entries added, keys they made) on an empty Redis."""
    await redis.flushall()
    before = (await redis.info("memory"))["used_memory"]
    body = {"rows": ["x" * 1000] * body_kb}
    blob_min = cache.BLOB_MIN_BYTES
    cache.BLOB_MIN_BYTES = sys.maxsize if inline else blob_min
    try:
        for n in range(entries):
            value = {"status": 200, "url": f"https://example.com/page?n={n}", "body": body}
            await cache.keep_answer(redis, f"entry:{n}", value, 600, "bench")
    finally:
        cache.BLOB_MIN_BYTES = blob_min
    after = (await redis.info("memory"))["used_memory"]
    return after - before, await redis.dbsize()


async def measure(port: int, args: argparse.Namespace) -> None:
    redis = Redis(port=port)
    rows = [
        (
            "every field inline (before)",
            await used_by_entries(redis, args.entries, args.body_kb, True),
        ),
        (
            "large fields once (now)",
            await used_by_entries(redis, args.entries, args.body_kb, False),
        ),
    ]
    await redis.aclose()
    print(f"\n{args.entries} cache entries, each with the same {args.body_kb} KB body\n")
    header = f"{'kept':<30}{'Redis used_memory':>20}{'keys':>7}"
    print(header)
    print("-" * len(header))
    for label, (used, keys) in rows:
        print(f"{label:<30}{used / 1_000_000:>17.1f} MB{keys:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--body-kb", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            redis_command(port, Path(data), persist=False), stdout=subprocess.DEVNULL
        )
        try:
            wait_for_port(port)
            asyncio.run(measure(port, args))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
