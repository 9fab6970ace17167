"""decide(): forced tier, else cached verdict, else the judge; then the tier's models. Pure policy."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache

from judge_router.config import Settings
from judge_router.routing.conversation import JudgedView, extract_turns, judged_view
from judge_router.routing.judges.llm import GuardedJudge
from judge_router.routing.verdict_cache import VerdictCache, cache_key
from judge_router.types import Decision, Source, Tier, Verdict


def new_request_id() -> str:
    return f"jr-{uuid.uuid4().hex}"


def fingerprint(messages: Sequence[dict[str, Any]]) -> bytes:
    """A digest of the raw messages: equal for equal conversations, whatever their key order."""
    canonical = json.dumps(
        messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    # surrogatepass: JSON may carry lone surrogates ("\\ud800"), which strict UTF-8 refuses.
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class Router:
    def __init__(self, settings: Settings, judge: GuardedJudge, cache: VerdictCache):
        self.settings = settings
        self.judge = judge
        self.cache = cache
        # What the judge sees and its cache key depend on the messages alone; remembering them
        # spares a repeated prompt the tokenizing (27 ms at 100k tokens) and the key hashing.
        entries = settings.cache.memory_entries
        self._readings: LRUCache[bytes, tuple[JudgedView, str]] | None = (
            LRUCache(entries) if entries else None
        )

    def models_for(self, tier: Tier) -> list[str]:
        return [entry.model for entry in self.settings.tiers[tier]]

    def _read(self, messages: Sequence[dict[str, Any]]) -> tuple[JudgedView, str, str | None]:
        """What the judge sees, its cache key, and the prompt text if the ledger may store it."""
        turns = extract_turns(messages) if self.settings.ledger.store_prompts else None
        text = None if turns is None else "\n\n".join(f"[{t.role}] {t.text}" for t in turns)
        memory = self._readings
        digest = fingerprint(messages) if memory is not None else b""
        reading = memory.get(digest) if memory is not None else None
        if reading is None:
            max_tokens = self.settings.judge.max_input_tokens
            view = judged_view(turns or extract_turns(messages), max_tokens)
            reading = view, cache_key(view, self.judge.name, self.judge.prompt_version)
            if memory is not None:
                memory[digest] = reading
        return *reading, text

    def passthrough(
        self,
        messages: Sequence[dict[str, Any]],
        model: str,
        metadata: dict[str, Any] | None = None,
        api_key_id: str | None = None,
    ) -> Decision:
        """A decision for a client that named a configured model: no judge, just that model."""
        view, key, text = self._read(messages)
        tier = next(
            (
                t
                for t, entries in self.settings.tiers.items()
                if any(e.model == model for e in entries)
            ),
            Tier.HIGH,
        )
        verdict = Verdict(tier=tier, reason=f"client asked for {model}", source=Source.PASSTHROUGH)
        return self._decision(verdict, False, [model], view, key, metadata, api_key_id, text)

    def configured_models(self) -> list[str]:
        return [entry.model for entries in self.settings.tiers.values() for entry in entries]

    async def decide(
        self,
        messages: Sequence[dict[str, Any]],
        forced_tier: Tier | None = None,
        metadata: dict[str, Any] | None = None,
        api_key_id: str | None = None,
    ) -> Decision:
        """Rate the conversation and pick its models; raises ConversationError on unusable input."""
        view, key, text = self._read(messages)
        cached = False
        if forced_tier is not None:
            verdict = Verdict(
                tier=forced_tier, reason="tier forced by the request", source=Source.FORCED
            )
        elif not self.judge.calls_llm:
            verdict = await self.judge.rate(view)  # local verdicts cost less than a cache lookup
        else:
            verdict, cached = await self.cache.get_or_rate(
                key, lambda: self.judge.rate(view), cacheable=lambda v: v.source is Source.LLM
            )
        models = self.models_for(verdict.tier)
        return self._decision(verdict, cached, models, view, key, metadata, api_key_id, text)

    @staticmethod
    def _decision(
        verdict: Verdict,
        cached: bool,
        models: list[str],
        view: JudgedView,
        key: str,
        metadata: dict[str, Any] | None,
        api_key_id: str | None,
        prompt_text: str | None,
    ) -> Decision:
        return Decision(
            request_id=new_request_id(),
            prompt_hash=key.rsplit(":", 1)[1],
            verdict=verdict,
            cached=cached,
            models=models,
            prompt_tokens=view.prompt_tokens,
            metadata=metadata,
            api_key_id=api_key_id,
            prompt_text=prompt_text,
        )
