"""Routing rules (precedence, every matcher and action, hostile regexes, invalid rules) and the
gradual rollout (shares over many prompts, a prompt stays in its arm)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from judge_router.config import ConfigError, Settings, load_settings
from judge_router.routing.pipeline import in_rollout
from judge_router.service.engine import Engine
from judge_router.service.factory import build_engine
from judge_router.types import Decision, Source, Tier

from fakes import FakeJudge, FakeLedger, ask, settings_data

CLASSIFY = {"name": "classification-is-cheap", "match": {"metadata": {"task_type": "classification"}},
            "tier": "low"}  # fmt: skip
FREE = {"name": "free-users-stay-small",
        "match": {"metadata": {"user_tier": "free"}, "max_prompt_tokens": 4000},
        "max_tier": "medium"}  # fmt: skip
REVIEW = {"name": "code-review",
          "match": {"last_user_regex": "(?i)review (this|my) (code|pull request)",
                    "api_key_id": ["team-a"]},
          "model": "openai/big-b"}  # fmt: skip


@pytest.fixture
def policy(
    make_settings: Callable[..., Settings],
) -> Callable[..., AsyncIterator[tuple[Engine, FakeJudge]]]:
    async def make(
        rules: list[dict[str, Any]], judge: FakeJudge | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[Engine, FakeJudge]]:
        fake = judge or FakeJudge(default=Tier.HIGH)
        engine = build_engine(
            make_settings(rules=rules, **overrides), judges=[fake], ledger=FakeLedger()
        )
        yield engine, fake
        await engine.aclose()

    return make  # type: ignore[return-value]


async def decide(make: Any, rules: list[dict[str, Any]], *requests: Any, **kw: Any) -> Any:
    async for engine, judge in make(rules, **kw):
        decisions = [await engine.decide(request) for request in requests]
        return decisions, judge
    raise AssertionError("unreachable")


async def test_the_first_matching_rule_decides_and_the_judge_is_not_called(policy: Any) -> None:
    both = {"metadata": {"task_type": "classification"}}
    rules = [CLASSIFY, {"name": "later", "match": both, "tier": "high"}]
    request = ask("Is this spam?", metadata={"task_type": "classification"})
    (decision,), judge = await decide(policy, rules, request)
    assert (decision.tier, decision.verdict.source, decision.rule) == (
        Tier.LOW, Source.RULE, "classification-is-cheap")  # fmt: skip
    assert decision.verdict.cost_usd == 0 and judge.seen == []  # no judge call in vain


async def test_no_rule_matches_and_the_judge_decides(policy: Any) -> None:
    request = ask("Is this spam?", metadata={"task_type": "extraction"})
    (decision,), judge = await decide(policy, [CLASSIFY], request)
    assert (decision.verdict.source, decision.rule, len(judge.seen)) == (Source.LLM, None, 1)


@pytest.mark.parametrize(
    ("match", "request_fields", "matches"),
    [
        ({"metadata": {"team": ["search", "ads"]}}, {"metadata": {"team": "ads"}}, True),
        ({"metadata": {"team": ["search", "ads"]}}, {"metadata": {"team": "mail"}}, False),
        ({"metadata": {"team": "search", "env": "prod"}}, {"metadata": {"team": "search"}}, False),
        ({"metadata": {"team": "search"}}, {"metadata": {"team": ["search"]}}, False),
        ({"min_prompt_tokens": 5}, {}, False),  # "hello there" is 2 tokens
        ({"max_prompt_tokens": 5}, {}, True),
        ({"last_user_regex": "(?i)^HELLO"}, {}, True),
        ({"last_user_regex": "goodbye"}, {}, False),
        ({"api_key_id": "team-a"}, {"api_key_id": "team-a"}, True),
        ({"api_key_id": ["team-a"]}, {"api_key_id": None}, False),
        ({"endpoint": ["chat", "responses"]}, {"endpoint": "chat"}, True),
        ({"endpoint": "messages"}, {"endpoint": "route"}, False),
        ({}, {}, True),  # no matcher: every request
    ],
)
async def test_each_matcher(
    policy: Any, match: dict[str, Any], request_fields: dict[str, Any], matches: bool
) -> None:
    rule = {"name": "r", "match": match, "tier": "low"}
    (decision,), _ = await decide(policy, [rule], ask("hello there", **request_fields))
    assert (decision.rule == "r") is matches
    assert decision.tier is (Tier.LOW if matches else Tier.HIGH)


async def test_a_model_action_sends_the_request_to_that_model(policy: Any) -> None:
    request = ask("Please review my pull request", api_key_id="team-a")
    (decision,), judge = await decide(policy, [REVIEW], request)
    assert decision.models == ["openai/big-b"] and decision.tier is Tier.HIGH
    assert (decision.verdict.source, decision.rule, judge.seen) == (Source.RULE, "code-review", [])


async def test_bounds_cap_or_raise_the_judges_verdict_and_keep_its_cost(policy: Any) -> None:
    free = ask("Prove it", metadata={"user_tier": "free"})
    paid = ask("Prove it too", metadata={"user_tier": "paid"})
    floor = {"name": "never-below-medium", "match": {"metadata": {"user_tier": "paid"}},
             "min_tier": "medium"}  # fmt: skip
    judge = FakeJudge(Tier.HIGH, Tier.LOW)
    (capped, raised), _ = await decide(policy, [FREE, floor], free, paid, judge=judge)
    assert (capped.tier, capped.verdict.source, capped.rule) == (
        Tier.MEDIUM, Source.RULE, "free-users-stay-small")  # fmt: skip
    assert "judged high" in capped.verdict.reason and capped.verdict.cost_usd == 0.001
    assert (raised.tier, raised.verdict.source, raised.rule) == (
        Tier.MEDIUM, Source.RULE, "never-below-medium")  # fmt: skip


async def test_a_bound_that_changes_nothing_leaves_the_judges_source_and_names_the_rule(
    policy: Any,
) -> None:
    judge = FakeJudge(Tier.LOW)
    (decision,), _ = await decide(policy, [FREE], ask("hi", metadata={"user_tier": "free"}),
                                  judge=judge)  # fmt: skip
    assert (decision.tier, decision.verdict.source, decision.rule) == (
        Tier.LOW, Source.LLM, "free-users-stay-small")  # fmt: skip


async def test_a_forced_tier_or_passthrough_beats_every_rule(policy: Any) -> None:
    always = {"name": "always-low", "tier": "low"}
    forced = ask("hi", tier=Tier.HIGH)
    passthrough = ask("hi", model="openai/mid-a")
    (first, second), _ = await decide(policy, [always], forced, passthrough)
    assert (first.verdict.source, first.tier, first.rule) == (Source.FORCED, Tier.HIGH, None)
    assert (second.verdict.source, second.models) == (Source.PASSTHROUGH, ["openai/mid-a"])


async def test_a_catastrophic_regex_gives_up_instead_of_stalling_the_loop(policy: Any) -> None:
    rule = {"name": "hostile", "match": {"last_user_regex": "^(a+)+$"}, "tier": "low"}
    hostile = ask("a" * 5_000 + "b")  # exponential backtracking for a plain `re`

    async def run() -> Decision:
        (decision,), _ = await decide(policy, [rule], hostile)
        return decision  # type: ignore[no-any-return]

    decision = await asyncio.wait_for(run(), timeout=5)  # a hang fails here instead of hanging
    assert decision.rule is None and decision.verdict.source is Source.LLM


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"name": "bad-regex", "match": {"last_user_regex": "(oops"}, "tier": "low"},
         "rule 'bad-regex': last_user_regex '(oops' is not a valid regex"),
        ({"name": "bad-matcher", "match": {"colour": "red"}, "tier": "low"},
         "rule 'bad-matcher': unknown matcher ['colour']"),
        ({"name": "bad-tier", "tier": "extreme"}, "rules.0.tier"),
        ({"name": "bad-model", "model": "gpt-9"}, "rules[0] (bad-model): model 'gpt-9' is in no tier"),
        ({"name": "no-action", "match": {}}, "rule 'no-action' has no action"),
        ({"name": "both", "tier": "low", "max_tier": "medium"}, "give one of tier, model"),
    ],
)  # fmt: skip
def test_an_invalid_rule_stops_start_up_naming_it(
    tmp_path: Path, rule: dict[str, Any], fragment: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings_data(tmp_path, rules=[rule])))
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert fragment in str(refused.value)


@pytest.mark.slow
def test_serve_refuses_an_invalid_rule_and_says_which(tmp_path: Path) -> None:
    from test_startup_checks import serve

    rule = {"name": "bad-regex", "match": {"last_user_regex": "(oops"}, "tier": "low"}
    status, output = serve(tmp_path, settings_data(tmp_path, rules=[rule]))
    assert status == 1 and "rule 'bad-regex'" in output


def test_rollout_shares_over_ten_thousand_prompt_hashes() -> None:
    hashes = [hashlib.blake2b(f"prompt {i}".encode(), digest_size=16).hexdigest()
              for i in range(10_000)]  # fmt: skip
    for percent in (0, 5, 25, 50, 99.5, 100):
        share = 100 * sum(in_rollout(h, percent) for h in hashes) / len(hashes)
        assert abs(share - percent) <= 1.5, (percent, share)


async def test_held_back_prompts_go_to_the_baseline_and_stay_in_their_arm(policy: Any) -> None:
    prompts = [ask(f"question number {i}") for i in range(200)]
    decisions, _ = await decide(policy, [], *prompts, *prompts, rollout={"high": 50})
    first, again = decisions[:200], decisions[200:]
    assert [d.arm for d in first] == [d.arm for d in again]  # stable per prompt
    held = [d for d in first if d.arm == "holdout"]
    assert 70 <= len(held) <= 130  # about half of the high tier
    assert all(d.models == ["openai/big-a"] and d.tier is Tier.HIGH for d in held)  # the baseline
    routed = [d for d in first if d.arm == "routed"]
    assert all(d.models == ["openai/big-a", "openai/big-b"] for d in routed)


async def test_rollout_leaves_forced_and_passthrough_requests_alone(policy: Any) -> None:
    requests = [ask(f"q {i}", tier=Tier.LOW) for i in range(50)]
    decisions, _ = await decide(policy, [], *requests, rollout={"low": 0})
    assert {d.arm for d in decisions} == {"routed"}


async def test_the_ledger_row_and_the_answer_carry_the_rule_and_the_arm(
    make_settings: Callable[..., Settings],
) -> None:
    ledger = FakeLedger()
    settings = make_settings(rules=[CLASSIFY], rollout={"low": 0})
    engine = build_engine(settings, judges=[FakeJudge()], ledger=ledger)
    answer = await engine.route(ask("spam?", metadata={"task_type": "classification"}))
    await engine.aclose()
    (row,) = ledger.stored.values()
    assert (answer.rule, answer.arm) == ("classification-is-cheap", "holdout")
    assert (row.rule, row.arm, row.model) == ("classification-is-cheap", "holdout", "openai/big-a")


async def test_a_rules_bounds_apply_to_a_request_with_no_text_too(policy: Any) -> None:
    rule = {"name": "free-low", "match": {"metadata": {"plan": "free"}}, "max_tier": "low"}
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    request = ask([{"role": "user", "content": image}], metadata={"plan": "free"})
    (decision,), judge = await decide(policy, [rule], request)
    assert (decision.tier, decision.verdict.source, decision.rule) == (
        Tier.LOW, Source.RULE, "free-low")  # fmt: skip
    assert judge.seen == []


async def test_a_prompts_arm_does_not_move_when_the_judge_changes(
    make_settings: Callable[..., Settings],
) -> None:
    prompts = [ask(f"question number {i}") for i in range(100)]
    arms = []
    keys = []
    for judge_name in ("judge-one", "judge-two"):  # the judge is part of the verdict cache key
        judge = FakeJudge(default=Tier.HIGH, name=judge_name)
        settings = make_settings(rollout={"high": 50})
        engine = build_engine(settings, judges=[judge], ledger=FakeLedger())
        decisions = [await engine.decide(p) for p in prompts]
        arms.append([d.arm for d in decisions])
        keys.append([d.prompt_hash for d in decisions])
        await engine.aclose()
    assert keys[0] != keys[1]  # the cache keys moved...
    assert arms[0] == arms[1] and "holdout" in arms[0] and "routed" in arms[0]  # ...the arms not


async def test_cached_verdicts_a_rule_then_bounds_keep_the_cache_hit_rate_within_one(
    make_settings: Callable[..., Settings],
) -> None:
    free_low = {"name": "free-mid", "match": {"metadata": {"plan": "free"}}, "max_tier": "medium"}
    engine = build_engine(make_settings(rules=[free_low]), judges=[FakeJudge(default=Tier.HIGH)])
    await engine.route(ask("the same prompt"))  # judged: high, and cached
    for _ in range(2):  # cache hits, then bounded by the rule: source rule
        await engine.route(ask("the same prompt", metadata={"plan": "free"}))
    totals = (await engine.ledger.summary())["totals"]
    await engine.aclose()
    assert (totals["cache_hits"], totals["judged"]) == (2, 1)
    assert totals["cache_hit_rate"] == 0.0  # of the one judged request, none came from the cache
