"""What the judge sees: text extraction and head-and-tail truncation by token count."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from judge_router.routing.conversation import Turn, extract_turns, judged_view
from judge_router.routing.judges.llm import load_prompt
from judge_router.routing.tokens import count_tokens
from judge_router.service.engine import Engine

from fakes import ask, judge_request

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ".split()


def long_text(tokens: int) -> str:
    text = " ".join(WORDS[i % len(WORDS)] + str(i % 97) for i in range(tokens))
    return "HEAD-MARKER " + text + " TAIL-MARKER"


def test_text_parts_are_joined_and_other_parts_shown_as_placeholders() -> None:
    turns = extract_turns(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                    {"type": "text", "text": "this"},
                ],
            }
        ]  # fmt: skip
    )
    assert turns == [Turn("user", "look at\n[image]\nthis")]


@pytest.mark.parametrize(
    ("part", "placeholder"),
    [
        ({"type": "image_url", "image_url": {"url": "x"}}, "[image]"),
        ({"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}, "[audio]"),
        ({"type": "file", "file": {"file_id": "f-1"}}, "[file]"),
        ({"type": "hologram"}, "[hologram]"),
    ],
)
def test_a_conversation_of_non_text_parts_has_no_text(
    part: dict[str, Any], placeholder: str
) -> None:
    view = judged_view(extract_turns([{"role": "user", "content": [part]}]), 1000)
    assert view.text == placeholder
    assert view.has_text is False
    with_text = [{"role": "user", "content": [part, {"type": "text", "text": "what is it?"}]}]
    assert judged_view(extract_turns(with_text), 1000).has_text is True


def test_empty_content_is_a_view_without_text_not_an_error() -> None:
    view = judged_view(extract_turns([{"role": "user", "content": "   "}]), 1000)
    assert (view.turns, view.has_text) == ((), False)


def test_short_conversation_is_untouched() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "Hello")]
    view = judged_view(turns, 1000)
    assert view.turns == tuple(turns) and not view.truncated


def test_fifty_thousand_token_prompt_is_cut_to_budget_keeping_head_and_tail() -> None:
    text = long_text(50_000)
    assert count_tokens(text) > 50_000
    view = judged_view([Turn("user", text)], 1000)
    assert view.truncated and view.prompt_tokens > 50_000
    shown = view.turns[0].text
    assert count_tokens(shown) <= 1000
    assert shown.startswith("HEAD-MARKER") and shown.endswith("TAIL-MARKER")
    assert "tokens omitted" in shown


def test_last_user_turn_kept_whole_when_it_fits() -> None:
    history = [Turn("system", long_text(3000)), Turn("assistant", long_text(2000))]
    question = Turn("user", "And what about the second option? " * 10)
    view = judged_view([*history, question], 1000)
    assert view.turns[-1] == question
    assert sum(count_tokens(t.text) for t in view.turns) <= 1000
    assert view.turns[0].text.startswith("[system] HEAD-MARKER")


async def test_judge_request_for_a_huge_prompt_stays_small(
    engine: Engine, judge_route: respx.Route
) -> None:
    await engine.route(ask([{"role": "user", "content": long_text(50_000)}]))
    sent = judge_request(judge_route)["messages"]
    template = count_tokens(load_prompt("judge-v1"))
    assert count_tokens(sent[1]["content"]) < 1100  # the cut prompt plus markers
    assert count_tokens(sent[0]["content"]) == template
