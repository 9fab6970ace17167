"""Routing rules, compiled once: which rule (first match wins) applies to a request.

A rule's regex runs with a time limit and on a bounded slice of the text, so a pattern that
backtracks catastrophically on a hostile prompt costs at most REGEX_TIMEOUT_S, never the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex

from judge_router.config_policy import MetadataValue, Rule
from judge_router.routing.conversation import message_text
from judge_router.routing.request import RoutingRequest

log = logging.getLogger(__name__)

REGEX_TIMEOUT_S = 0.01
REGEX_TEXT_CHARS = 20_000  # the last user message's first characters a regex is searched in


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


class LastUserText:
    """The text every regex rule of one request searches, extracted once and only if needed."""

    def __init__(self, messages: Sequence[dict[str, Any]]):
        self._messages = messages
        self._text: str | None = None

    def get(self) -> str:
        if self._text is None:
            self._text = last_user_text(self._messages)[:REGEX_TEXT_CHARS]
        return self._text


def _any_of(value: Any) -> frozenset[Any] | None:
    if value is None:
        return None
    return frozenset(value if isinstance(value, list) else [value])


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    metadata: tuple[tuple[str, frozenset[MetadataValue]], ...]
    pattern: Any  # regex.Pattern
    api_keys: frozenset[str] | None
    endpoints: frozenset[str] | None

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        match = rule.match
        wanted = tuple(
            (key, frozenset(v if isinstance(v, list) else [v]))
            for key, v in (match.metadata or {}).items()
        )
        pattern = regex.compile(match.last_user_regex) if match.last_user_regex else None
        return cls(rule, wanted, pattern, _any_of(match.api_key_id), _any_of(match.endpoint))

    def matches(self, request: RoutingRequest, prompt_tokens: int, text: LastUserText) -> bool:
        """Cheapest matchers first; the regex only when everything else holds."""
        match = self.rule.match
        if self.endpoints is not None and request.endpoint not in self.endpoints:
            return False
        if self.api_keys is not None and request.api_key_id not in self.api_keys:
            return False
        metadata = request.metadata or {}
        for key, allowed in self.metadata:
            value = metadata.get(key)
            if not isinstance(value, str | int | float | bool) or value not in allowed:
                return False
        if match.min_prompt_tokens is not None and prompt_tokens < match.min_prompt_tokens:
            return False
        if match.max_prompt_tokens is not None and prompt_tokens > match.max_prompt_tokens:
            return False
        if self.pattern is not None:
            try:
                return self.pattern.search(text.get(), timeout=REGEX_TIMEOUT_S) is not None
            except TimeoutError:
                log.warning(
                    "rule %s: last_user_regex gave up after %.0f ms on a prompt; treated as no "
                    "match (simplify the pattern)",
                    self.rule.name,
                    REGEX_TIMEOUT_S * 1000,
                )
                return False
        return True


class Rules:
    def __init__(self, rules: Sequence[Rule]):
        self.compiled = [CompiledRule.of(rule) for rule in rules]

    def first_match(self, request: RoutingRequest, prompt_tokens: int) -> Rule | None:
        text = LastUserText(request.messages)
        for compiled in self.compiled:
            if compiled.matches(request, prompt_tokens, text):
                return compiled.rule
        return None
