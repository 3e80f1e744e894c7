"""Reading a model's answer: code fences, yes/no and option ids, in linear time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kernel.answers import json_object, match_option, strip_code_fence, yes_no


@dataclass(frozen=True)
class Option:
    id: str
    name: str = ""


OPTIONS = [Option("billing", "Billing desk"), Option("tech", "Tech support")]


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ('```json\n{"a": 1}\n```', '{"a": 1}'),
        ('```\n{"a": 1}\n```', '{"a": 1}'),
        ('```{"a": 1}```', '{"a": 1}'),
        ('  ```JSON {"a": 1}```  ', '{"a": 1}'),
        ("```python\nprint(1)\n```", "print(1)"),
        ("```yes```", "yes"),
        ('{"a": 1}', '{"a": 1}'),
        ("```", "```"),
        ("``````", ""),
    ],
)
def test_strip_code_fence(text: str, inside: str) -> None:
    assert strip_code_fence(text) == inside


def test_an_unclosed_fence_holds_no_object() -> None:
    # How its time grows with the text: bench/hostile_inputs.py.
    assert json_object("```" + " " * 200_000) is None


def test_json_object_only_for_objects() -> None:
    assert json_object('```json\n{"verdict": true}\n```') == {"verdict": True}
    assert json_object("[1, 2]") is None
    assert json_object("not json") is None


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("Yes, it does.", True), ("FALSE", False), ("no way", False), ("maybe", None)],
)
def test_yes_no(text: str, verdict: bool | None) -> None:
    assert yes_no(text) is verdict


@pytest.mark.parametrize(
    ("answer", "chosen"),
    [
        ("tech", "tech"),
        ("  `Billing`.\n", "billing"),
        ("Tech support", "tech"),
        ("billing\nbecause the customer was charged twice", "billing"),
        ("I would send this to billing.", "billing"),
        ("billing-desk", None),
        ("billing or tech", None),
        ("sales", None),
        ("", None),
        (None, None),
    ],
)
def test_match_option(answer: str | None, chosen: str | None) -> None:
    option = match_option(answer, OPTIONS)
    assert (option.id if option else None) == chosen
