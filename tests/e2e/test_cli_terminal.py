"""`workflow-station run examples/dag_pipeline.json --follow` in a real terminal: the live
table is drawn while the run goes on, the outputs are printed, and the exit code is 0.

The terminal is tmux when the machine has it (the pane is read with `tmux capture-pane`),
otherwise a pseudo-terminal from Python's `pty` (its output stream is read): either way rich
sees a terminal and draws live, as it would for a person. The example's targets are the demo
service, served here on a free port in place of `make dev`'s 8001.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import termios
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.examples import EXAMPLES
from cli.stack import BIN
from tests.conftest import Gateway, unique, wait_until
from tests.fakes.targets import serve

COLUMNS, LINES = 120, 40
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
SCRIPT = BIN / "workflow-station"


@dataclass
class Screen:
    """What the terminal showed: snapshots while the command ran, then its last state."""

    snapshots: list[str] = field(default_factory=list)
    final: str = ""


@pytest.fixture
async def example_file(tmp_path: Path) -> AsyncIterator[Path]:
    """examples/dag_pipeline.json, its demo targets on a port of this test's own."""
    from examples.demo_service import app

    async with serve(app) as demo_url:
        text = (
            (EXAMPLES / "dag_pipeline.json").read_text().replace("http://127.0.0.1:8001", demo_url)
        )
        payload = json.loads(text)
        payload["workflow_id"] = unique("terminal")
        path = tmp_path / "dag_pipeline.json"
        path.write_text(json.dumps(payload))
        yield path


def command(example: Path, gateway: Gateway, exit_file: Path) -> str:
    assert SCRIPT.exists(), (
        f"{SCRIPT} is missing: the console script comes from `pip install -e .`, which"
        " `make dev` and `make test` run"
    )
    run = shlex.join([str(SCRIPT), "run", str(example), "--follow"])
    return f"env GATEWAY_URL={gateway.url} {run}; echo EXIT=$? > {shlex.quote(str(exit_file))}"


async def in_tmux(script: str, exit_file: Path) -> Screen:
    socket = f"ws-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own, stopped after
    tmux = ["tmux", "-L", socket]
    screen = Screen()

    def capture(*scrollback: str) -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "live", *scrollback], capture_output=True, text=True
        ).stdout

    # The pane outlives the command, so its last state can be read.
    subprocess.run(
        [
            *tmux,
            "new-session",
            "-d",
            "-x",
            str(COLUMNS),
            "-y",
            str(LINES),
            "-s",
            "live",
            f"{script}; sleep 600",
        ],
        check=True,
    )
    try:

        async def finished() -> bool:
            screen.snapshots.append(await asyncio.to_thread(capture))
            return exit_file.exists() and exit_file.read_text().strip() != ""

        await wait_until(finished, timeout=120)
        # With the lines that scrolled out of the pane (the outputs are long).
        screen.final = await asyncio.to_thread(capture, "-S", "-")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return screen


async def in_pty(script: str, exit_file: Path) -> Screen:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
    process = subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[str] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command has ended and closed the terminal
                return
            if not data:
                return
            chunks.append(data.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    screen = Screen()
    try:

        async def finished() -> bool:
            screen.snapshots.append(ANSI.sub("", "".join(chunks)))
            return process.poll() is not None

        await wait_until(finished, timeout=120)
        await asyncio.to_thread(reader.join, 10)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        os.close(master)
    screen.final = ANSI.sub("", "".join(chunks))
    return screen


TERMINALS = ["tmux" if shutil.which("tmux") else "pty (no tmux on this machine)", "pty"]


@pytest.mark.parametrize("terminal", TERMINALS)
async def test_run_follow_draws_a_live_table_in_a_terminal(
    terminal: str, gateway: Gateway, example_file: Path, tmp_path: Path
) -> None:
    exit_file = tmp_path / "exit"
    script = command(example_file, gateway, exit_file)
    open_terminal = in_tmux if terminal == "tmux" else in_pty
    screen = await open_terminal(script, exit_file)
    steps = ("fetch", "summarize", "keywords", "flaky_check", "report")
    # While the run went on: the table with every step, some not finished yet.
    live = [
        shot
        for shot in screen.snapshots
        if all(step in shot for step in steps) and re.search(r"\b(pending|running)\b", shot)
    ]
    assert live, f"no live table was seen; last screen:\n{screen.final}"
    assert re.search(r"\d/5 steps", live[0])
    # At the end: every step completed, the outputs printed, exit code 0.
    assert "5/5 steps" in screen.final, screen.final
    for step in steps:
        assert re.search(rf"{step}\s.*completed", screen.final), screen.final
    assert "outputs:" in screen.final and '"digest"' in screen.final, screen.final
    assert exit_file.read_text().strip() == "EXIT=0", screen.final
