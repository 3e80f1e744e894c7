"""Reading what a model answered: JSON in a code fence, a yes/no, an option id.

Pure and linear-time (no backtracking regex runs on the model's text), so both the LLM
activities and the workflows' pure logic (conditions on an LLM's result) use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

FENCE = "```"
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_YES_NO = re.compile(r"\b(true|false|yes|no)\b", re.IGNORECASE)
#: What surrounds an option id in a chatty answer: quotes, Markdown, punctuation.
_ANSWER_TRIM = "`'\"*_.:;,!()[]{}<> \t\r\n"


def strip_code_fence(text: str) -> str:
    """The text inside one Markdown code fence around the whole of `text`, else `text`.

    The opening fence may carry a language tag (```` ```json ````) when whitespace follows it;
    the content is returned stripped.
    """
    stripped = text.strip()
    if len(stripped) < 2 * len(FENCE) or not (
        stripped.startswith(FENCE) and stripped.endswith(FENCE)
    ):
        return text
    inner = stripped[len(FENCE) : -len(FENCE)]
    tag_end = 0
    while tag_end < len(inner) and inner[tag_end] in _TAG_CHARS:
        tag_end += 1
    if tag_end and tag_end < len(inner) and inner[tag_end].isspace():
        inner = inner[tag_end:]
    return inner.strip()


def json_object(text: str) -> dict[str, Any] | None:
    """The reply as a JSON object, tolerating a Markdown code fence around it."""
    try:
        value = json.loads(strip_code_fence(text))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def yes_no(text: str) -> bool | None:
    """The first true/false/yes/no word in free text ("Yes, because…" → True)."""
    found = _YES_NO.search(text)
    if found is None:
        return None
    return found.group(1).lower() in ("true", "yes")


class Option(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


OptionT = TypeVar("OptionT", bound=Option)


def match_option(answer: str | None, options: Sequence[OptionT]) -> OptionT | None:
    """The option a free-text answer names, or None when it names none or several.

    Tries, case-insensitively: the answer (or its first line), trimmed of quotes, markup and
    punctuation, equal to an option id, then to an option name; then exactly one option id
    appearing in the answer as a whole word.
    """
    text = (answer or "").strip()
    first_line = text.splitlines()[0] if text else ""
    for candidate in (text, first_line):
        trimmed = candidate.strip(_ANSWER_TRIM).casefold()
        if not trimmed:
            continue
        for option in options:
            if trimmed == option.id.casefold():
                return option
        for option in options:
            if option.name and trimmed == option.name.strip().casefold():
                return option
    folded = text.casefold()
    mentioned = [option for option in options if _mentions(folded, option.id.casefold())]
    return mentioned[0] if len(mentioned) == 1 else None


def _mentions(text: str, word: str) -> bool:
    """`word` stands in `text` not as part of a longer word (letters, digits, `_`, `-`)."""
    if not word:
        return False
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _is_word_char(before) and not _is_word_char(after):
            return True
        start = text.find(word, start + 1)
    return False


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_-"
