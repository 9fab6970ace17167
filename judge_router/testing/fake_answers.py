"""What the fake provider answers, steered by markers: the answers a cascade's checks reject, a
grader, tool calls and JSON answers.

Model-name markers apply to one model (so a test can make only the cheap tier fail):

    answers-empty  answers-refusal  answers-truncated  answers-bad-json  answers-bad-tool-args
    quality-N      (its answers carry [[grade:N]], which the fake grader reads: N from 1 to 10)

Markers in the last user message apply to every model: [[answer:empty]], [[answer:refusal]],
[[answer:truncated]], [[answer:bad-json]], [[answer:tool-call]] (the request's first tool is
called with the arguments of [[tool-args:{...}]], `{}` without it), [[grade:N]].

A model whose name holds `grader` is the grader: it scores the last [[grade:N]] in what it is
shown (8 without one); [[grader:invalid-json]] and [[grader:out-of-range]] make it misbehave.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

REFUSAL = "I'm sorry, but I can't help with that."
DEFAULT_GRADE = 8
_GRADE_RE = re.compile(r"\[\[grade:(\d+)\]\]")
_QUALITY_RE = re.compile(r"quality-(\d+)")
_TOOL_ARGS_RE = re.compile(r"\[\[tool-args:(\{.*?\})\]\]")
_JSON_FORMATS = ("json_object", "json_schema")


@dataclass(slots=True)
class FakeAnswer:
    content: str | None
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


def _marked(name: str, model: str, last_user: str) -> bool:
    return f"answers-{name}" in model or f"[[answer:{name}]]" in last_user


def grader_reply(shown: str) -> str:
    """The fake grader's JSON: the last [[grade:N]] in what it was shown."""
    if "[[grader:invalid-json]]" in shown:
        return "this is not a grade"
    if "[[grader:out-of-range]]" in shown:
        return json.dumps({"score": 42, "reason": "fake grader out of range"})
    found = _GRADE_RE.findall(shown)
    score = int(found[-1]) if found else DEFAULT_GRADE
    return json.dumps({"score": score, "reason": f"fake grader gave {score}"})


def _tool_call(body: dict[str, Any], last_user: str, model: str) -> list[dict[str, Any]]:
    tools = body.get("tools")
    first = tools[0] if isinstance(tools, list) and tools else None
    name = ((first or {}).get("function") or {}).get("name") or "tool"
    found = _TOOL_ARGS_RE.search(last_user)
    arguments = found.group(1) if found else "{}"
    if "answers-bad-tool-args" in model:
        arguments = '{"unfinished": '
    return [
        {
            "id": "call_fake_1",
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
    ]


def play(model: str, body: dict[str, Any], last_user: str, echo: str) -> FakeAnswer:
    """The answer of `model` to `body`, whose default text is `echo`."""
    quality = _QUALITY_RE.search(model)
    if quality:
        echo = f"{echo} [[grade:{quality.group(1)}]]"
    if _marked("empty", model, last_user):
        return FakeAnswer("")
    if _marked("refusal", model, last_user):
        return FakeAnswer(REFUSAL)
    if _marked("truncated", model, last_user):
        return FakeAnswer(echo[: max(1, len(echo) // 2)], "length")
    if _marked("tool-call", model, last_user) or "answers-bad-tool-args" in model:
        return FakeAnswer(None, "tool_calls", _tool_call(body, last_user, model))
    response_format = body.get("response_format")
    wants_json = isinstance(response_format, dict) and (
        response_format.get("type") in _JSON_FORMATS
    )
    if _marked("bad-json", model, last_user):
        return FakeAnswer("{not json" if wants_json else echo)
    if wants_json:
        return FakeAnswer(json.dumps({"answer": echo}))
    return FakeAnswer(echo)
