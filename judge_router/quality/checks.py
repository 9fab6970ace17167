"""A cascade's answer checks: cheap, local tests that say an answer is unusable without asking an LLM.

Each check reads the chat completion and the request that asked for it, and says whether the
answer passes. Checks that have nothing to test pass (`valid_json` when JSON was not asked for,
`tool_args_valid` without tool calls): they reject answers, never requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from judge_router.config_quality import CheckName
from judge_router.quality.answer_text import answer_message, first_choice
from judge_router.routing.conversation import message_text

# How an answer that refuses begins. Matched case-insensitively against the start of the answer
# (after whitespace and quotes), so an answer that discusses refusals further on is not one.
DEFAULT_REFUSAL_PATTERNS = [
    r"i'?m sorry,? but i (?:can(?:'|no)?t|am unable to|won'?t)",
    r"i(?: am|'m) (?:sorry|afraid),? (?:but )?i (?:can(?:'|no)?t|am unable to)",
    r"i (?:can(?:'|no)?t|cannot|won'?t) (?:help|assist|comply|provide|do that|answer)",
    r"i(?: am|'m) (?:unable|not able) to (?:help|assist|comply|provide|answer)",
    r"(?:sorry|unfortunately),? i (?:can(?:'|no)?t|am unable to)",
    r"as an ai(?: language model)?,? i (?:can(?:'|no)?t|cannot|am unable|don'?t)",
]
REFUSAL_WINDOW = 200  # characters of the answer's start the patterns are matched against
_JSON_FORMATS = ("json_object", "json_schema")


@dataclass(frozen=True, slots=True)
class Failed:
    """Why an answer was rejected: the check's name and what it found."""

    check: str
    detail: str


Check = Callable[[dict[str, Any], dict[str, Any]], str | None]  # (response, params) -> why


def not_empty(response: dict[str, Any], params: dict[str, Any]) -> str | None:
    message = answer_message(response)
    if message.get("tool_calls") or message_text(message.get("content")).strip():
        return None
    return "the answer has no text and no tool call"


def not_truncated(response: dict[str, Any], params: dict[str, Any]) -> str | None:
    if first_choice(response).get("finish_reason") == "length":
        return "the answer was cut off at the token limit (finish_reason: length)"
    return None


class RefusalCheck:
    def __init__(self, patterns: Sequence[str] | None):
        listed = DEFAULT_REFUSAL_PATTERNS if patterns is None else list(patterns)
        joined = "|".join(f"(?:{pattern})" for pattern in listed)
        self.pattern = re.compile(joined, re.IGNORECASE) if listed else None

    def __call__(self, response: dict[str, Any], params: dict[str, Any]) -> str | None:
        if self.pattern is None:
            return None
        text = message_text(answer_message(response).get("content"))
        start = text.lstrip(" \t\r\n\"'*").replace("\u2019", "'")[:REFUSAL_WINDOW]
        if self.pattern.match(start):
            return "the answer is a refusal"
        return None


def valid_json(response: dict[str, Any], params: dict[str, Any]) -> str | None:
    """When `response_format` asks for JSON: the content parses, and matches a given schema."""
    wanted = params.get("response_format")
    if not isinstance(wanted, dict) or wanted.get("type") not in _JSON_FORMATS:
        return None
    text = message_text(answer_message(response).get("content"))
    try:
        value = json.loads(text)
    except ValueError:
        return f"response_format asks for JSON; the answer is not JSON ({len(text)} characters)"
    schema = (wanted.get("json_schema") or {}).get("schema")
    if wanted["type"] == "json_schema" and isinstance(schema, dict):
        return _schema_error(value, schema, "the answer")
    if wanted["type"] == "json_object" and not isinstance(value, dict):
        return "response_format asks for a JSON object; the answer is another JSON value"
    return None


def tool_args_valid(response: dict[str, Any], params: dict[str, Any]) -> str | None:
    """Every tool call names a tool the request offered, and its arguments parse as a JSON object
    that matches that tool's `parameters` schema."""
    calls = answer_message(response).get("tool_calls") or []
    if not calls:
        return None
    schemas: dict[str, Any] = {}
    for tool in params.get("tools") or []:
        function = (tool or {}).get("function") or {}
        if function.get("name"):
            schemas[function["name"]] = function.get("parameters")
    for call in calls:
        function = (call or {}).get("function") or {}
        name = function.get("name")
        if schemas and name not in schemas:
            return f"the answer calls {name!r}, which is not one of the request's tools"
        try:
            arguments = json.loads(function.get("arguments") or "")
        except ValueError:
            return f"the arguments of the call to {name!r} are not JSON"
        if not isinstance(arguments, dict):
            return f"the arguments of the call to {name!r} are not a JSON object"
        schema = schemas.get(str(name))
        if isinstance(schema, dict):
            found = _schema_error(arguments, schema, f"the arguments of {name!r}")
            if found:
                return found
    return None


def _schema_error(value: Any, schema: dict[str, Any], what: str) -> str | None:
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
        error = jsonschema.exceptions.best_match(validator(schema).iter_errors(value))
    except (jsonschema.exceptions.SchemaError, TypeError, ValueError):
        return None  # the client's schema is broken: not the answer's fault
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{what}: schema mismatch at {where}: {error.message}"[:300]


class AnswerChecks:
    """The configured checks, in order; `first_failure` names the first one an answer fails."""

    def __init__(self, names: Sequence[CheckName], refusal_patterns: Sequence[str] | None = None):
        known: dict[str, Check] = {
            "not_empty": not_empty,
            "not_truncated": not_truncated,
            "not_refusal": RefusalCheck(refusal_patterns),
            "valid_json": valid_json,
            "tool_args_valid": tool_args_valid,
        }
        self.checks = [(name, known[name]) for name in names]

    def first_failure(self, response: dict[str, Any], params: dict[str, Any]) -> Failed | None:
        for name, check in self.checks:
            why = check(response, params)
            if why is not None:
                return Failed(name, why)
        return None
