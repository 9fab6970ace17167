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
    has_text: bool = True  # False when the turn holds only placeholders of images, audio, files


@dataclass(frozen=True, slots=True)
class JudgedView:
    """What the judge is shown, and how long the full prompt was."""

    turns: tuple[Turn, ...]
    prompt_tokens: int  # the whole conversation's text, before truncation
    view_tokens: int  # the text actually shown to the judge
    truncated: bool
    has_text: bool = True  # False: nothing but non-text parts (or empty content) to judge

    @property
    def text(self) -> str:
        return "\n\n".join(turn.text for turn in self.turns)


# What the judge is shown in place of a part it cannot read (OpenAI's and the Responses API's names).
PLACEHOLDERS = {
    "image_url": "[image]",
    "input_image": "[image]",
    "input_audio": "[audio]",
    "file": "[file]",
    "input_file": "[file]",
}
TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})


def content_text(content: Any) -> tuple[str, bool]:
    """The text of a message's content and whether any of it is real text (not placeholders).

    A string, or a list of parts: text parts are kept, and each other part is shown as a
    placeholder such as `[image]`, so the judge knows the request carries one.
    """
    if content is None:
        return "", False
    if isinstance(content, str):
        return content, bool(content.strip())
    if not isinstance(content, list):
        raise ConversationError("message content must be a string, a list of parts, or null")
    pieces, has_text = [], False
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("refusal" if kind == "refusal" else "text") if kind else None
        if kind in TEXT_PARTS and isinstance(text, str):
            pieces.append(text)
            has_text = has_text or bool(text.strip())
        else:
            pieces.append(PLACEHOLDERS.get(str(kind), f"[{kind or 'part'}]"))
    return "\n".join(pieces), has_text


def message_text(content: Any) -> str:
    """The text of a message's content, with a placeholder per non-text part."""
    return content_text(content)[0]


def valid_unicode(text: str) -> str:
    """JSON allows lone surrogates ("\\ud800") that UTF-8 cannot encode; swap them for U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def extract_turns(messages: Sequence[dict[str, Any]]) -> list[Turn]:
    """Validate roles and collect the text of each message; raises ConversationError.

    A conversation with no text at all is not an error: its view says `has_text=False` and the
    pipeline routes it by `routing.no_text_tier`.
    """
    if not messages:
        raise ConversationError("`messages` is empty: send at least one message")
    turns = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in KNOWN_ROLES:
            raise ConversationError(
                f"messages[{index}].role is {role!r}; expected one of {sorted(KNOWN_ROLES)}"
            )
        text, has_text = content_text(message.get("content"))
        text = valid_unicode(text)
        if text.strip():
            turns.append(Turn(role=str(role), text=text, has_text=has_text))
    return turns


def judged_view(turns: Sequence[Turn], max_tokens: int) -> JudgedView:
    """Cut the conversation to `max_tokens`, keeping the last user turn whole where it fits.

    Anything cut loses its middle, not its ends: the head (instructions) and the tail (the latest
    context) say most about what is being asked.
    """
    has_text = any(turn.has_text for turn in turns)
    encoded = [encode(turn.text) for turn in turns]
    counts = [len(tokens) for tokens in encoded]
    total = sum(counts)
    if total <= max_tokens:
        return JudgedView(tuple(turns), total, total, truncated=False, has_text=has_text)

    last_user = max(
        (i for i, turn in enumerate(turns) if turn.role == "user"), default=len(turns) - 1
    )
    focus = turns[last_user]
    if counts[last_user] >= max_tokens:
        text, used = cut_middle(focus.text, max_tokens, encoded[last_user])
        return JudgedView((Turn(focus.role, text),), total, used, True, has_text)

    budget = max_tokens - counts[last_user]
    others = [turn for i, turn in enumerate(turns) if i != last_user]
    earlier = "\n\n".join(f"[{turn.role}] {turn.text}" for turn in others)
    shortened, used = cut_middle(earlier, budget)
    view = (Turn(EARLIER_TURNS_ROLE, shortened), focus)
    return JudgedView(view, total, used + counts[last_user], True, has_text)
