"""Reads a request's messages once: what the judge sees, its cache key, and the text to store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from judge_router.routing.cache_key import cache_key
from judge_router.routing.conversation import JudgedView, extract_turns, judged_view


@dataclass(frozen=True, slots=True)
class Reading:
    view: JudgedView
    key: str  # the verdict cache key
    prompt_text: str | None  # only when the ledger may store prompts

    @property
    def prompt_hash(self) -> str:
        return self.key.rsplit(":", 1)[1]


def fingerprint(messages: Sequence[dict[str, Any]]) -> bytes:
    """A digest of the raw messages: equal for equal conversations, whatever their key order."""
    canonical = json.dumps(
        messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    # surrogatepass: JSON may carry lone surrogates ("\\ud800"), which strict UTF-8 refuses.
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ConversationReader:
    def __init__(
        self,
        max_input_tokens: int,
        judge_identity: tuple[str, str],
        store_prompts: bool,
        memory_entries: int,
    ):
        self.max_input_tokens = max_input_tokens
        self.judge_identity = judge_identity
        self.store_prompts = store_prompts
        # What the judge sees and its cache key depend on the messages alone; remembering them
        # spares a repeated prompt the tokenizing (27 ms at 100k tokens) and the key hashing.
        self._memo: LRUCache[bytes, tuple[JudgedView, str]] | None = (
            LRUCache(memory_entries) if memory_entries else None
        )

    def read(self, messages: Sequence[dict[str, Any]]) -> Reading:
        """Raises ConversationError on messages that cannot be judged."""
        turns = extract_turns(messages) if self.store_prompts else None
        text = None if turns is None else "\n\n".join(f"[{t.role}] {t.text}" for t in turns)
        memo = self._memo
        digest = fingerprint(messages) if memo is not None else b""
        remembered = memo.get(digest) if memo is not None else None
        if remembered is None:
            view = judged_view(turns or extract_turns(messages), self.max_input_tokens)
            remembered = view, cache_key(view, *self.judge_identity)
            if memo is not None:
                memo[digest] = remembered
        return Reading(*remembered, text)
