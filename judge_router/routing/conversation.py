"""Turn OpenAI-style messages into the text the judge sees: validated, token-counted and truncated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judge_router.routing.tokens import cut_middle, encode

KNOWN_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
EARLIER_TURNS_ROLE = "earlier turns (shortened)"


class ConversationError(ValueError):
    """The messages cannot be judged; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True, slots=True)
class JudgedView:
    """What the judge is shown, and how long the full prompt was."""

    turns: tuple[Turn, ...]
    prompt_tokens: int  # the whole conversation's text, before truncation
    view_tokens: int  # the text actually shown to the judge
    truncated: bool

    @property
    def text(self) -> str:
        return "\n\n".join(turn.text for turn in self.turns)


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
        return "\n".join(texts)
    raise ConversationError("message content must be a string, a list of parts, or null")


def valid_unicode(text: str) -> str:
    """JSON allows lone surrogates ("\\ud800") that UTF-8 cannot encode; swap them for U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def extract_turns(messages: Sequence[dict[str, Any]]) -> list[Turn]:
    """Validate roles and collect the text of each message; raises ConversationError."""
    if not messages:
        raise ConversationError("`messages` is empty: send at least one message with text")
    turns = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in KNOWN_ROLES:
            raise ConversationError(
                f"messages[{index}].role is {role!r}; expected one of {sorted(KNOWN_ROLES)}"
            )
        text = valid_unicode(message_text(message.get("content")))
        if text.strip():
            turns.append(Turn(role=str(role), text=text))
    if not turns:
        raise ConversationError("no text to judge: every message's content is empty")
    return turns


def judged_view(turns: Sequence[Turn], max_tokens: int) -> JudgedView:
    """Cut the conversation to `max_tokens`, keeping the last user turn whole where it fits.

    Anything cut loses its middle, not its ends: the head (instructions) and the tail (the latest
    context) say most about what is being asked.
    """
    encoded = [encode(turn.text) for turn in turns]
    counts = [len(tokens) for tokens in encoded]
    total = sum(counts)
    if total <= max_tokens:
        return JudgedView(tuple(turns), total, total, truncated=False)

    last_user = max(
        (i for i, turn in enumerate(turns) if turn.role == "user"), default=len(turns) - 1
    )
    focus = turns[last_user]
    if counts[last_user] >= max_tokens:
        text, used = cut_middle(focus.text, max_tokens, encoded[last_user])
        return JudgedView((Turn(focus.role, text),), total, used, truncated=True)

    budget = max_tokens - counts[last_user]
    others = [turn for i, turn in enumerate(turns) if i != last_user]
    earlier = "\n\n".join(f"[{turn.role}] {turn.text}" for turn in others)
    shortened, used = cut_middle(earlier, budget)
    view = (Turn(EARLIER_TURNS_ROLE, shortened), focus)
    return JudgedView(view, total, used + counts[last_user], truncated=True)
