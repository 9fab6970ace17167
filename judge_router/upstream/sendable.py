"""Whether a provider request can be encoded at all, checked before the first model is tried.

A lone surrogate ("\\ud800" is valid JSON, not UTF-8), a number JSON cannot carry (1e400 parses as
infinity) or nesting deep enough to exhaust the encoder fails while litellm encodes the request,
before any provider sees it. Tried anyway, that failure would count against every model of the
chain: three such requests would open every circuit. Refused here, it is the client's 400.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 100  # far beyond any real tool schema; well short of the encoders' recursion limits


class UnsendableRequest(ValueError):
    """The request cannot be sent to any provider; the message names the field and why."""


def check_sendable(params: dict[str, Any]) -> None:
    """Raise UnsendableRequest naming the first field that no provider request could carry."""
    stack: list[tuple[Any, str, int]] = [(params, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsendableRequest(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnsendableRequest(f"{where}: {value} is not a number JSON can carry")
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                _check_text(str(key), where or "(top level)")
                stack.append((item, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(value, list | tuple):
            for index in range(len(value) - 1, -1, -1):
                stack.append((value[index], f"{where}[{index}]", depth + 1))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsendableRequest(
            f"{where}: contains a lone surrogate (such as \\ud800), which is not valid UTF-8"
        ) from None


def check_part_types(messages: Any, valid_types: frozenset[str]) -> None:
    """Raise UnsendableRequest for a user message part of a type no provider takes: litellm refuses
    it for every model alike, and that must be the client's 400, not every model's failure."""
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for position, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(part, dict) and kind not in valid_types:
                raise UnsendableRequest(
                    f"messages[{index}].content[{position}].type: {kind!r} is not a content part "
                    f"type providers take; use one of {sorted(valid_types)}"
                )
