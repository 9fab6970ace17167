"""What a chat completion answered, as text a check or a grader reads."""

from __future__ import annotations

from typing import Any

from judge_router.routing.conversation import message_text


def first_choice(response: dict[str, Any]) -> dict[str, Any]:
    choices = response.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    return first


def answer_message(response: dict[str, Any]) -> dict[str, Any]:
    message = first_choice(response).get("message")
    return message if isinstance(message, dict) else {}


def answer_text(response: dict[str, Any]) -> str:
    """The first choice's text, and each tool call as `[tool call NAME(ARGUMENTS)]`."""
    message = answer_message(response)
    parts = [message_text(message.get("content"))]
    for call in message.get("tool_calls") or []:
        function = (call or {}).get("function") or {}
        parts.append(f"[tool call {function.get('name')}({function.get('arguments') or ''})]")
    return "\n".join(part for part in parts if part)
