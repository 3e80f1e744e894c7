"""The docs hold together: every relative link lands on a file (and a heading), every page
under docs/ can be reached from README.md, and README.md stays one screen long."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The README is the front door, not the manual (docs/ holds the rest).
README_MAX_LINES = 200

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
#: `[text](target)` and `![alt](target)`, the target up to a space or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(path: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lowercased, punctuation but hyphens and
    underscores dropped, spaces turned to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the page's headings make; a repeated heading gets `-1`, `-2`…"""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The page's link targets, outside code blocks and inline code."""
    targets: list[str] = []
    for line in prose_lines(path):
        targets.extend(LINK.findall(INLINE_CODE.sub("", line)))
    return targets


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None


def resolve(page: Path, target: str) -> tuple[Path, str | None]:
    """The file a relative link points at, and its #anchor if any."""
    file_part, _, anchor = target.partition("#")
    destination = (page.parent / file_part).resolve() if file_part else page
    return destination, anchor or None


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in links(page):
        if is_external(target):
            continue
        destination, anchor = resolve(page, target)
        if not destination.exists():
            problems.append(f"{target}: no file {destination.relative_to(ROOT)}")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    reached, queue = {README}, [README]
    while queue:
        page = queue.pop()
        for target in links(page):
            if is_external(target):
                continue
            destination, _ = resolve(page, target)
            if destination.suffix == ".md" and destination.is_file() and destination not in reached:
                reached.add(destination)
                queue.append(destination)
    unreached = [str(page.relative_to(ROOT)) for page in pages() if page not in reached]
    assert unreached == []


def test_the_readme_fits_one_screen() -> None:
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Tenants and API keys") == "tenants-and-api-keys"
    assert slug("DAG runner: `POST /execute`") == "dag-runner-post-execute"
    assert slug("Workers, queues and stopping") == "workers-queues-and-stopping"
    assert slug("Health: liveness and readiness") == "health-liveness-and-readiness"
    assert slug("snake_case and kebab-case") == "snake_case-and-kebab-case"


#: Folders whose files the docs name in inline code (`gateway/runs/`, `kernel/errors.py`).
PROJECT_DIRS = (
    "activities",
    "bench",
    "cli",
    "docs",
    "examples",
    "gateway",
    "kernel",
    "schemas",
    "settings",
    "tests",
    "workflows",
)
CODE_PATH = re.compile(rf"`((?:{'|'.join(PROJECT_DIRS)})/[\w./-]*)`")


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_file_the_page_names_exists(page: Path) -> None:
    # A code map that names a moved module sends the reader to nothing.
    named = {path for line in prose_lines(page) for path in CODE_PATH.findall(line)}
    assert sorted(path for path in named if not (ROOT / path).exists()) == []
