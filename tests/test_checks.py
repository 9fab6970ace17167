"""Each of a cascade's answer checks: what it rejects, what it lets through, and that a check with
nothing to test passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from judge_router.config_quality import ALL_CHECKS, CascadeConfig
from judge_router.quality.checks import (
    AnswerChecks,
    RefusalCheck,
    not_empty,
    not_truncated,
    tool_args_valid,
    valid_json,
)
from judge_router.testing.fake_answers import REFUSAL

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def answer(
    content: str | None = "Paris.", finish: str = "stop", calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls is not None:
        message["tool_calls"] = calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def call(arguments: str, name: str = "weather") -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_not_empty_rejects_blank_text_but_not_a_tool_call() -> None:
    assert not_empty(answer("  \n"), {}) is not None
    assert not_empty(answer(None), {}) is not None
    assert not_empty({"choices": []}, {}) is not None
    assert not_empty(answer(None, calls=[call("{}")]), {}) is None
    assert not_empty(answer("Paris."), {}) is None


def test_not_truncated_reads_the_finish_reason() -> None:
    assert not_truncated(answer(finish="length"), {}) is not None
    assert not_truncated(answer(finish="stop"), {}) is None


@pytest.mark.parametrize(
    "text",
    [REFUSAL, "I can't help with that request.", '  "I cannot assist with this."',
     "As an AI language model, I cannot do that.", "Sorry, I can\u2019t do that."],
)  # fmt: skip
def test_the_shipped_patterns_catch_refusals(text: str) -> None:
    assert RefusalCheck(None)(answer(text), {}) is not None


@pytest.mark.parametrize(
    "text",
    ["Paris is the capital of France.", "Here is why I can't stand long meetings: ...",
     "The model said 'I can't help' in the transcript."],
)  # fmt: skip
def test_answers_that_merely_mention_refusing_pass(text: str) -> None:
    assert RefusalCheck(None)(answer(text), {}) is None


def test_refusal_patterns_can_be_replaced_or_turned_off() -> None:
    own = RefusalCheck([r"computer says no"])
    assert own(answer("Computer says no."), {}) is not None
    assert own(answer(REFUSAL), {}) is None
    assert RefusalCheck([])(answer(REFUSAL), {}) is None


def test_a_bad_refusal_pattern_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="not a valid regex"):
        CascadeConfig(refusal_patterns=["(unclosed"])


def test_valid_json_only_when_json_was_asked_for() -> None:
    as_object = {"response_format": {"type": "json_object"}}
    assert valid_json(answer("{not json"), as_object) is not None
    assert valid_json(answer("[1, 2]"), as_object) is not None  # an object was asked for
    assert valid_json(answer('{"a": 1}'), as_object) is None
    assert valid_json(answer("{not json"), {}) is None
    assert valid_json(answer("{not json"), {"response_format": {"type": "text"}}) is None


def test_valid_json_matches_a_json_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    wanted = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    assert valid_json(answer('{"n": 3}'), wanted) is None
    failed = valid_json(answer('{"n": "three"}'), wanted)
    assert failed is not None and "n" in failed
    assert valid_json(answer("{}"), wanted) is not None
    # A schema that is itself broken is the client's problem, not the answer's.
    broken = {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}}
    assert valid_json(answer("{}"), broken) is None


def test_tool_args_must_parse_and_match_the_tools_schema() -> None:
    offered = {"tools": [WEATHER_TOOL]}
    assert tool_args_valid(answer(None, calls=[call('{"city": "Oslo"}')]), offered) is None
    assert tool_args_valid(answer(None, calls=[call('{"unfinished": ')]), offered) is not None
    assert tool_args_valid(answer(None, calls=[call("[]")]), offered) is not None
    missing = tool_args_valid(answer(None, calls=[call("{}")]), offered)
    assert missing is not None and "city" in missing
    unknown = tool_args_valid(answer(None, calls=[call("{}", name="launch")]), offered)
    assert unknown is not None and "launch" in unknown
    assert tool_args_valid(answer("no calls"), offered) is None


def test_the_checks_run_in_order_and_name_the_first_failure() -> None:
    checks = AnswerChecks(ALL_CHECKS)
    failed = checks.first_failure(answer("", finish="length"), {})
    assert failed is not None and failed.check == "not_empty"
    only = AnswerChecks(["not_truncated"])
    assert only.first_failure(answer(""), {}) is None
    bad_json = json.dumps({"response_format": {"type": "json_object"}})
    failed = checks.first_failure(answer("plain"), json.loads(bad_json))
    assert failed is not None and failed.check == "valid_json"
