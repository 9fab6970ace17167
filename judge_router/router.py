"""decide(): forced tier, else cached verdict, else the judge; then the tier's models. Pure policy."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from judge_router.cache import VerdictCache, cache_key
from judge_router.config import Settings
from judge_router.conversation import extract_turns, judged_view
from judge_router.judge import GuardedJudge
from judge_router.tiers import Decision, Source, Tier, Verdict


def new_request_id() -> str:
    return f"jr-{uuid.uuid4().hex}"


class Router:
    def __init__(self, settings: Settings, judge: GuardedJudge, cache: VerdictCache):
        self.settings = settings
        self.judge = judge
        self.cache = cache

    def models_for(self, tier: Tier) -> list[str]:
        return [entry.model for entry in self.settings.tiers[tier]]

    def passthrough(
        self,
        messages: Sequence[dict[str, Any]],
        model: str,
        metadata: dict[str, Any] | None = None,
    ) -> Decision:
        """A decision for a client that named a configured model: no judge, just that model."""
        view = judged_view(extract_turns(messages), self.settings.judge.max_input_tokens)
        key = cache_key(view, self.judge.name, self.judge.prompt_version)
        tier = next(
            (
                t
                for t, entries in self.settings.tiers.items()
                if any(e.model == model for e in entries)
            ),
            Tier.HIGH,
        )
        return Decision(
            request_id=new_request_id(),
            prompt_hash=key.rsplit(":", 1)[1],
            verdict=Verdict(
                tier=tier, reason=f"client asked for {model}", source=Source.PASSTHROUGH
            ),
            cached=False,
            models=[model],
            prompt_tokens=view.prompt_tokens,
            metadata=metadata,
        )

    def configured_models(self) -> list[str]:
        return [entry.model for entries in self.settings.tiers.values() for entry in entries]

    async def decide(
        self,
        messages: Sequence[dict[str, Any]],
        forced_tier: Tier | None = None,
        metadata: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Decision:
        """Rate the conversation and pick its models; raises ConversationError on unusable input."""
        view = judged_view(extract_turns(messages), self.settings.judge.max_input_tokens)
        key = cache_key(view, self.judge.name, self.judge.prompt_version)
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
        return Decision(
            request_id=request_id or new_request_id(),
            prompt_hash=key.rsplit(":", 1)[1],
            verdict=verdict,
            cached=cached,
            models=self.models_for(verdict.tier),
            prompt_tokens=view.prompt_tokens,
            metadata=metadata,
        )
