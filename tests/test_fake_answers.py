"""The fake provider's quality cases: each marker plays the answer the checks are tested on."""

from __future__ import annotations

import json

import pytest

from judge_router.testing.fake_answers import REFUSAL, grader_reply, play

TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("where", ["model", "prompt"])
def test_markers_play_the_answers_checks_reject(where: str) -> None:
    def answer(name: str) -> tuple[str | None, str]:
        model = f"openai/answers-{name}" if where == "model" else "openai/plain"
        prompt = f"[[answer:{name}]] hello" if where == "prompt" else "hello"
        played = play(model, {}, prompt, "echo: hello")
        return played.content, played.finish_reason

    assert answer("empty") == ("", "stop")
    assert answer("refusal") == (REFUSAL, "stop")
    assert answer("truncated") == ("echo:", "length")


def test_a_model_marker_applies_to_that_model_only() -> None:
    assert play("openai/plain", {}, "hi", "echo: hi").content == "echo: hi"
    assert play("openai/cheap-answers-refusal", {}, "hi", "echo: hi").content == REFUSAL


def test_json_is_answered_when_asked_for_and_broken_on_request() -> None:
    body = {"response_format": {"type": "json_object"}}
    assert json.loads(play("openai/m", body, "hi", "echo").content or "") == {"answer": "echo"}
    assert play("openai/answers-bad-json", body, "hi", "echo").content == "{not json"


def test_tool_calls_carry_the_arguments_asked_for() -> None:
    prompt = '[[answer:tool-call]] [[tool-args:{"city": "Paris"}]]'
    played = play("openai/m", {"tools": TOOLS}, prompt, "echo")
    assert played.content is None and played.finish_reason == "tool_calls"
    [call] = played.tool_calls
    assert call["function"] == {"name": "weather", "arguments": '{"city": "Paris"}'}
    broken = play("openai/answers-bad-tool-args", {"tools": TOOLS}, "hi", "echo")
    assert broken.tool_calls[0]["function"]["arguments"] == '{"unfinished": '


def test_the_grader_scores_the_last_grade_marker_it_is_shown() -> None:
    assert json.loads(grader_reply("no marker"))["score"] == 8
    assert json.loads(grader_reply("[[grade:9]] then the answer [[grade:3]]"))["score"] == 3
    answer = play("openai/low-quality-2", {}, "hi", "echo").content or ""
    assert json.loads(grader_reply(f"conversation [[grade:9]] answer {answer}"))["score"] == 2
    assert json.loads(grader_reply("[[grader:out-of-range]]"))["score"] == 42
    with pytest.raises(json.JSONDecodeError):
        json.loads(grader_reply("[[grader:invalid-json]]"))
