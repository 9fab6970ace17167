"""decide(): the one way every request is routed, as ordered steps over a draft decision.

/route, the proxy faces and `eval` all come here, so a step added once applies everywhere. Each step
looks at the draft and fills in what it can; a step with nothing to do leaves it alone:

    explicit (forced tier / passthrough) → budgets (a spent budget refuses here) → read → rules
    → no text → pinned (bounds and caps leave one tier: no judge) → strategy (a cascade may start
    at the cheapest tier: no judge) → cache → judge → rule bounds → budget caps → rollout arm
    → models
"""

from __future__ import annotations

import asyncio
import hashlib

from judge_router.config import Settings
from judge_router.routing.budget_limits import BudgetCheck, BudgetExceeded
from judge_router.routing.draft import Draft, Step
from judge_router.routing.judges.chain import JudgeChain, Judged
from judge_router.routing.judges.features import encode, featurize
from judge_router.routing.one_flight import LeaderCancelled, OneFlight
from judge_router.routing.reading import ConversationReader
from judge_router.routing.request import ModelNames, RoutingRequest, explicit_choice
from judge_router.routing.rules import Rules
from judge_router.routing.shared_flight import Claim, SharedFlight
from judge_router.routing.verdict_store import VerdictStore
from judge_router.types import Decision, Source, Tier, Verdict


def arm_hash(text: str) -> str:
    """The hash a prompt's arm is drawn from: of its text alone, so changing the judge (which is
    part of the verdict cache key) moves no prompt between the arms."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def in_rollout(prompt_hash: str, percent: float) -> bool:
    """Whether a prompt is in the routed share: its hash read as a number in [0, 10000)."""
    return int(prompt_hash[:8], 16) % 10_000 < percent * 100


class DecisionPipeline:
    def __init__(
        self,
        settings: Settings,
        judges: JudgeChain,
        verdicts: VerdictStore,
        budgets: BudgetCheck | None = None,
        shared: SharedFlight | None = None,
    ):
        self.settings = settings
        self.judges = judges
        self.verdicts = verdicts
        self.budgets = budgets
        self.shared = shared  # one flight across replicas (Redis), if the store is shared
        self.reader = ConversationReader(
            settings.judge.max_input_tokens,
            judges.identity,
            settings.ledger.store_prompts,
            settings.cache.memory_entries,
        )
        self._flights: OneFlight[tuple[Judged, bool]] = OneFlight()
        self.configured_models = ModelNames.of(
            (entry.name, entry.model) for entries in settings.tiers.values() for entry in entries
        )
        self.rules = Rules(settings.rules)
        self.everything_routed = settings.rollout.everything_routed  # once, not per request
        self.steps: list[tuple[str, Step]] = [
            ("explicit", self.explicit),
            ("budgets", self.budget_limit),
            ("read", self.read),
            ("rules", self.apply_rules),
            ("no_text", self.no_text),
            ("pinned", self.pinned_tier),
            ("strategy", self.choose_strategy),
            ("cache", self.cache),
            ("judge", self.judge),
            ("bounds", self.rule_bounds),
            ("budget_caps", self.budget_caps),
            ("rollout", self.rollout_arm),
            ("models", self.tier_models),
            ("learn", self.learn),
        ]

    async def decide(self, request: RoutingRequest) -> Decision:
        """Raises UnknownModel, UnknownTier or ConversationError on a request it cannot route."""
        draft = Draft(request)
        for _, step in self.steps:
            await step(draft)
        return draft.decision()

    def models_for(self, tier: Tier) -> list[str]:
        return [entry.model for entry in self.settings.tiers[tier]]

    def tier_of(self, model: str) -> Tier:
        """The first tier a configured model is listed in."""
        found = [
            t
            for t, entries in self.settings.tiers.items()
            if any(e.model == model for e in entries)
        ]
        return found[0] if found else Tier.HIGH

    async def explicit(self, draft: Draft) -> None:
        tier, model = explicit_choice(draft.request, self.configured_models)
        if model is not None:
            draft.verdict = Verdict(
                tier=self.tier_of(model),
                reason=f"client asked for {model}",
                source=Source.PASSTHROUGH,
            )
            draft.models = [model]
        elif tier is not None:
            draft.verdict = Verdict(
                tier=tier, reason="tier forced by the request", source=Source.FORCED
            )

    async def read(self, draft: Draft) -> None:
        draft.reading = self.reader.read(draft.request.messages)

    async def apply_rules(self, draft: Draft) -> None:
        """The first rule that matches: it decides the tier or model, or sets bounds for later."""
        if draft.verdict is not None or not self.rules.compiled:
            return
        assert draft.reading is not None
        rule = self.rules.first_match(draft.request, draft.reading.view.prompt_tokens)
        if rule is None:
            return
        draft.rule = rule
        if rule.model is not None:
            model = self.configured_models.litellm_model[rule.model]
            draft.models = [model]
            tier = self.tier_of(model)
        elif rule.tier is not None:
            tier = rule.tier
        else:
            return  # bounds (or a strategy only): the judge decides, rule_bounds applies them
        draft.verdict = Verdict(tier=tier, reason=f"rule {rule.name}", source=Source.RULE)

    async def rule_bounds(self, draft: Draft) -> None:
        """A matched rule's min_tier / max_tier, applied to the judge's verdict."""
        rule, verdict = draft.rule, draft.verdict
        if rule is None or verdict is None or verdict.source is Source.BUDGET:
            return  # a budget's pinned tier already respects the rule's bounds
        if rule.tier is not None or rule.model is not None:
            return  # the rule decided: there are no bounds to apply
        bounded = verdict.tier
        if rule.max_tier is not None and bounded.rank > rule.max_tier.rank:
            bounded = rule.max_tier
        if rule.min_tier is not None and bounded.rank < rule.min_tier.rank:
            bounded = rule.min_tier
        if bounded is not verdict.tier:  # the judge's cost and reason stay on record
            draft.verdict = verdict.model_copy(update={
                "tier": bounded, "source": Source.RULE,
                "reason": f"{verdict.reason} (judged {verdict.tier.value}; rule {rule.name} "
                          f"bounds it to {bounded.value})",
            })  # fmt: skip

    async def budget_limit(self, draft: Draft) -> None:
        """A spent budget with `over_hard: reject` refuses the request now, before anything is
        read or judged (forced and passthrough requests too); a cap is kept for later steps."""
        if self.budgets is None:
            return
        limit = await self.budgets.limit_for(draft.request)
        if limit is not None and limit.refuses:
            raise BudgetExceeded(limit)
        draft.limit = limit

    async def pinned_tier(self, draft: Draft) -> None:
        """When a rule's bounds and a budget's cap leave one tier, the judge is not asked in vain."""
        if draft.verdict is not None:
            return
        rule, limit = draft.rule, draft.limit
        floor = rule.min_tier if rule and rule.min_tier else Tier.LOW
        ceiling = rule.max_tier if rule and rule.max_tier else Tier.HIGH
        cap = limit.max_tier if limit else None
        # cap <= floor <= ceiling: the cap decides, unless the rule alone pins that very tier.
        if limit is not None and cap is not None and cap.rank <= floor.rank and cap is not ceiling:
            reason = f"{limit.describe()} caps it to {cap.value}: no judge needed"
            draft.verdict = Verdict(tier=cap, reason=reason, source=Source.BUDGET)
            draft.capped_by = limit.budget
        elif rule is not None and floor is ceiling:
            reason = f"rule {rule.name} bounds it to {floor.value}: no judge needed"
            draft.verdict = Verdict(tier=floor, reason=reason, source=Source.RULE)

    async def budget_caps(self, draft: Draft) -> None:
        """A budget past its soft share (or its limit) caps a routed verdict; a forced tier or a
        passthrough model is the client's choice and is left alone."""
        limit, verdict = draft.limit, draft.verdict
        if limit is None or limit.max_tier is None or verdict is None:
            return
        if verdict.source in (Source.FORCED, Source.PASSTHROUGH, Source.BUDGET):
            return
        cap = limit.max_tier
        if verdict.tier.rank <= cap.rank:
            return
        draft.verdict = verdict.model_copy(update={  # the judge's cost and reason stay on record
            "tier": cap, "source": Source.BUDGET,
            "reason": f"{verdict.reason} (was {verdict.tier.value}; {limit.describe()} caps it "
                      f"to {cap.value})",
        })  # fmt: skip
        draft.models = None  # a rule's model sits in the tier above: the cap's models instead
        draft.capped_by = limit.budget

    async def rollout_arm(self, draft: Draft) -> None:
        """Hold back part of a tier's traffic on the baseline: the arm follows the prompt's hash,
        so a prompt stays in its arm and ramping up is a config change. A request under a budget
        cap is never held back (the baseline may cost more than the cap allows): it is `exempt`,
        in neither arm, so it does not bias the comparison."""
        rollout = self.settings.rollout
        verdict = draft.verdict
        if self.everything_routed or verdict is None:
            return
        if draft.limit is not None:
            draft.arm = "exempt"
            return
        if verdict.source in (Source.FORCED, Source.PASSTHROUGH):
            return  # the client chose: nothing to compare
        assert draft.reading is not None
        if not in_rollout(arm_hash(draft.reading.view.text), rollout.percent(verdict.tier)):
            draft.arm = "holdout"
            draft.models = [self.settings.baseline]
            draft.strategy = "direct"  # the holdout is what routing is compared with: no cascade

    async def no_text(self, draft: Draft) -> None:
        """Nothing but images, audio or files: no judge can rate it, so a configured tier does."""
        assert draft.reading is not None
        if draft.verdict is None and not draft.reading.view.has_text:
            draft.verdict = Verdict(
                tier=self.settings.routing.no_text_tier,
                reason="no text to judge: routing.no_text_tier",
                source=Source.RULE,
            )

    async def choose_strategy(self, draft: Draft) -> None:
        """The request's `strategy`, else the matched rule's, else routing.strategy. A request that
        names a model is answered by it (direct). A cascade with `cascade.start: cheapest` starts
        at the lowest tier the rule allows, and the judge is not asked."""
        rule, verdict = draft.rule, draft.verdict
        chosen = (
            draft.request.strategy or (rule and rule.strategy) or self.settings.routing.strategy
        )
        if verdict is not None and verdict.source is Source.PASSTHROUGH:
            chosen = "direct"
        draft.strategy = chosen
        if chosen != "cascade" or verdict is not None or self.settings.cascade.start != "cheapest":
            return
        floor = rule.min_tier if rule and rule.min_tier else Tier.LOW
        draft.verdict = Verdict(
            tier=floor, reason=f"cascade starts at {floor.value}", source=Source.CASCADE
        )

    async def cache(self, draft: Draft) -> None:
        if draft.verdict is not None or not self.judges.may_cache:
            return
        assert draft.reading is not None
        found = await self.verdicts.get(draft.reading.key)
        if found is not None:
            draft.verdict, draft.cached = found.verdict, True

    async def judge(self, draft: Draft) -> None:
        """Ask the judges; concurrent requests for one prompt share one call (one flight)."""
        if draft.verdict is not None:
            return
        reading = draft.reading
        assert reading is not None
        if not self.judges.may_cache:  # local verdicts cost less than sharing them
            draft.verdict = (await self.judges.judge(reading.view)).verdict
            return

        async def judge_and_keep() -> tuple[Judged, bool]:
            # A store that yields (a network one) may have gained the verdict since the cache
            # step looked: the previous flight can have ended in between. A shared store's
            # claim looks too, and waits while another replica judges the prompt.
            claim = Claim()
            if self.shared is not None:
                claim = await self.shared.claim(reading.key)
                found = claim.found
            else:
                found = await self.verdicts.get(reading.key)
            if found is not None:
                return Judged(found.verdict, cacheable=True), True
            try:
                judged = await self.judges.judge(reading.view)
                if judged.cacheable:  # paid for: kept even if this request is cancelled meanwhile
                    await asyncio.shield(self.verdicts.put(reading.key, judged.verdict))
            finally:
                if self.shared is not None and claim.token is not None:
                    await asyncio.shield(self.shared.release(reading.key, claim))
            return judged, False

        while True:
            try:
                (judged, from_store), shared = await self._flights.run(reading.key, judge_and_keep)
                break
            except LeaderCancelled:  # the request judging this prompt was cancelled
                await self.cache(draft)  # its successor may already have stored a verdict
                if draft.verdict is not None:
                    return
        if from_store:
            draft.verdict, draft.cached = judged.verdict, True
            return
        if not shared:
            draft.verdict = judged.verdict
            return
        # Another request paid for this verdict: to this one it is free, and a shared cacheable
        # verdict counts as a cache hit.
        update: dict[str, object] = {"cost_usd": 0.0, "latency_ms": 0.0}
        if judged.cacheable:
            update["source"] = Source.CACHE
        draft.verdict = judged.verdict.model_copy(update=update)
        draft.cached = judged.cacheable

    async def learn(self, draft: Draft) -> None:
        """judge.learn: keep what the judge saw as a feature vector on the row (never the text),
        so the verdict and any outcome of this request can train a local judge."""
        if not self.settings.judge.learn or draft.reading is None:
            return
        view = draft.reading.view
        if view.has_text:
            draft.features = encode(featurize(view.text, view.prompt_tokens, len(view.turns)))

    async def tier_models(self, draft: Draft) -> None:
        if draft.models is None:
            assert draft.verdict is not None
            draft.models = self.models_for(draft.verdict.tier)
