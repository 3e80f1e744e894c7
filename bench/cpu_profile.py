"""Where the engine's CPU goes: py-spy on the worker and the gateway under the bench's loads.

    make profile                                  # .venv/bin/python bench/cpu_profile.py
    .venv/bin/python bench/cpu_profile.py --mode fast --out /tmp/ws-profile

Starts the bench stack (`stack.py`), then for each load samples the worker and the gateway
with `py-spy record` from the load's first request to its end: 100 Hz, Python frames, and
only the thread holding the GIL (`--gil`), so a sample is Python code running, not a thread
waiting in epoll, a queue or a condition (which py-spy's idle detection does not all catch):

- `fanout`: one engine run of the 1,000 x 50 ms fan-out (`POST /execute`);
- `chain`: three engine runs of the chain of 200 echo steps (the per-step cost on the
  critical path: one workflow task and one activity after the other);
- `throughput`: 200 one-step runs, 20 at once.

Writes each profile as collapsed stacks (`<out>/<load>-<process>.txt`, one `frame;frame;…
count` line per stack; `flamegraph.pl` or speedscope.app draw them) and prints the top frames
by own time (samples where the frame was the innermost one). py-spy needs ptrace rights over
the processes: root, or `kernel.yama.ptrace_scope=0`, or the `SYS_PTRACE` capability in a
container. `--svg` writes flame graphs instead (no top-frames table).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from dag import BENCH_ENV, Clients, Contender, run_engine, throughput  # noqa: E402
from graphs import graph  # noqa: E402
from stack import BIN, BenchStack, bench_stack  # noqa: E402

PROCESSES = ("worker", "gateway")
#: Frames of the project's code, as py-spy names them: `Class.method (path/file.py)`.
OWN_CODE = tuple(f"({package}/" for package in ("kernel", "workflows", "activities", "gateway"))
RATE = 100


def record(pid: int, path: Path, svg: bool) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` until it is interrupted (it writes `path` then)."""
    return subprocess.Popen(
        [
            str(BIN / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--nolineno",
            "--gil",
            "--format",
            "flamegraph" if svg else "raw",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@dataclass
class Profile:
    """Collapsed stacks summed up: samples per innermost frame and per frame anywhere."""

    samples: int
    own: Counter[str]
    total: Counter[str]

    @classmethod
    def read(cls, path: Path) -> Profile:
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                frames = stack.split(";")
                own[frames[-1]] += int(count)
                for frame in set(frames):
                    total[frame] += int(count)
        return cls(sum(own.values()), own, total)

    def top_own(self, top: int) -> list[tuple[str, float]]:
        return [(frame, count / self.samples) for frame, count in self.own.most_common(top)]

    def top_total(self, top: int) -> list[tuple[str, float]]:
        """Our own and temporalio's frames by inclusive time: which part of the engine or
        the SDK the own-time frames (mostly asyncio, importlib, pydantic) run for."""
        branches = [
            (frame, count / self.samples)
            for frame, count in self.total.most_common()
            if frame.endswith(OWN_CODE) or "(temporalio/" in frame
        ]
        return branches[:top]


async def profiled(stack: BenchStack, load: str, args: argparse.Namespace) -> None:
    suffix = "svg" if args.svg else "txt"
    paths = {name: args.out / f"{load}-{name}.{suffix}" for name in PROCESSES}
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=600, limits=limits) as gateway:
        temporal = await Client.connect(stack.temporal_address)
        clients = Clients(gateway, [], temporal, stack.target_url, True)
        engine = Contender("engine", "engine", args.mode)
        await run_engine(graph(1, 1, stack.target_url, 1), gateway, args.mode)  # warm-up
        samplers = {name: record(stack.pid(name), paths[name], args.svg) for name in PROCESSES}
        try:
            if load == "fanout":
                seconds = await run_engine(graph(1, 1000, stack.target_url, 50), gateway, args.mode)
                print(f"\nfan-out 1,000 x 50 ms: {seconds:.2f} s")
            elif load == "chain":
                chain = graph(200, 1, stack.target_url, 0)
                times = [await run_engine(chain, gateway, args.mode) for _ in range(3)]
                print(f"\nchain of 200 echo, 3 runs: {', '.join(f'{t:.2f}' for t in times)} s")
            else:
                figures = await throughput(engine, clients, runs=200, concurrency=20)
                print(
                    f"\n200 one-step runs, 20 at once: {figures['runs_per_s']:.1f} runs/s,"
                    f" p99 {figures['p99']:.2f} s"
                )
        finally:
            for sampler in samplers.values():
                sampler.send_signal(signal.SIGINT)
            for name, sampler in samplers.items():
                _, errors = sampler.communicate(timeout=60)
                if not paths[name].exists():
                    print(f"  py-spy wrote no profile of the {name}: {errors.decode()[-500:]}")
    for name in PROCESSES:
        if args.svg or not paths[name].exists():
            continue
        profile = Profile.read(paths[name])
        print(
            f"  {name}: {profile.samples} samples holding the GIL ({profile.samples / RATE:.1f}"
            f" s of Python), {paths[name]}"
        )
        print("    by own time:")
        for frame, share in profile.top_own(args.top):
            print(f"    {share:>6.1%}  {frame}")
        print("    by inclusive time, the project's and temporalio's frames:")
        for frame, share in profile.top_total(args.top):
            print(f"    {share:>6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", default="fanout,chain,throughput")
    parser.add_argument("--mode", default=None, help="engine execution mode to send")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ws-profile"))
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--svg", action="store_true", help="flame graphs instead of stacks")
    args = parser.parse_args()
    if not (BIN / "py-spy").exists():
        sys.exit(f"py-spy is not installed: {BIN / 'pip'} install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    with bench_stack(BENCH_ENV) as stack:
        for load in args.loads.split(","):
            asyncio.run(profiled(stack, load, args))


if __name__ == "__main__":
    main()
