"""Prices: the flat fast path agrees with litellm's exact price wherever it is used."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

from judge_router.accounting.prices import ExactCost, Price, flat_limits, thresholds  # noqa: E402
from judge_router.config import Settings  # noqa: E402
from judge_router.upstream.prices import Pricer  # noqa: E402

FLAT = Price(1e-6, 4e-6, from_config=False)


def tiered_at(start: int) -> ExactCost:
    """An exact price that doubles every token once the prompt is longer than `start`."""

    def exact(prompt: int, completion: int) -> float:
        factor = 2 if prompt > start else 1
        return factor * FLAT.flat(prompt, completion)

    return exact


def test_flat_price_is_used_up_to_the_tier_the_price_keys_name() -> None:
    price = flat_limits(
        FLAT, tiered_at(150_000), thresholds(["input_cost_per_token_above_150k_tokens"])
    )
    assert price.flat_prompt_limit == 150_000
    assert price.is_flat_for(150_000, 300) and not price.is_flat_for(150_001, 300)


def test_an_unnamed_tier_ends_the_flat_range_at_the_last_agreeing_probe() -> None:
    price = flat_limits(FLAT, tiered_at(150_000))
    assert price.flat_prompt_limit == 128_000  # the probe below the (unnamed) 150k tier


def test_a_price_that_never_matches_is_never_flat() -> None:
    price = flat_limits(FLAT, lambda prompt, completion: FLAT.flat(prompt, completion) + 1e-6)
    assert price.flat_prompt_limit == -1 and not price.is_flat_for(0, 0)


def test_long_completions_are_not_assumed_flat() -> None:
    price = flat_limits(FLAT, lambda prompt, completion: FLAT.flat(prompt, completion))
    assert price.is_flat_for(2_000_000, 65_536) and not price.is_flat_for(100, 65_537)


def test_a_config_price_is_always_flat() -> None:
    assert Price(1e-9, 2e-9, from_config=True).is_flat_for(10**9, 10**9)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-5-nano",
        "gpt-5.1",
        "claude-haiku-4-5",
        "gemini/gemini-2.5-pro",  # long-context tier above 200k prompt tokens
        "gemini/gemini-2.5-flash-lite",
        "anthropic.claude-sonnet-4-20250514-v1:0",  # tiered on Bedrock
        "deepseek/deepseek-v4-flash",  # litellm prices it off the flat map: never the fast path
    ],
)
def test_cost_equals_litellms_price_for_any_usage(model: str) -> None:
    tiers = {tier: [{"model": model}] for tier in ("low", "medium", "high")}
    completions = Pricer(Settings(tiers=tiers, baseline=model, judge={"model": "heuristic"}))
    rng = random.Random(model)
    usages = [(0, 0), (200_000, 10), (200_001, 10), (272_001, 5), (3_000_000, 70_000)]
    usages += [(rng.randrange(0, 400_000), rng.randrange(0, 20_000)) for _ in range(40)]
    for prompt, completion in usages:
        exact = sum(
            litellm.cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=completion)
        )
        assert completions.cost(model, prompt, completion) == pytest.approx(
            exact, rel=1e-9, abs=1e-15
        ), (
            model,
            prompt,
            completion,
        )
