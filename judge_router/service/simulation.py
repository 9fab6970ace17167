"""The savings simulator as `judge-router simulate` and the dashboard both run it: a traffic mix
priced by litellm's map (or the mix's own prices), with the judge's prompt as configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judge_router.accounting import simulator
from judge_router.config import JudgeConfig


def judge_template_tokens(prompt: str, prompt_dir: Path | None) -> int:
    """Tokens the judge is sent besides the conversation: its prompt and the data markers."""
    from judge_router.routing.conversation import JudgedView
    from judge_router.routing.judges.llm import load_prompt, render_conversation
    from judge_router.routing.tokens import count_tokens

    empty = JudgedView((), 0, 0, truncated=False)
    return count_tokens(load_prompt(prompt, prompt_dir)) + count_tokens(
        render_conversation(empty, "0" * 16)
    )


def litellm_prices(model: str) -> tuple[float, float]:
    """Per-token prices from litellm's map: read from its file where that is exact, else asked."""
    from judge_router.config import ModelEntry
    from judge_router.upstream.bundled_map import flat_price
    from judge_router.upstream.prices import resolve_price

    flat = flat_price(model, prompt_tokens=0)
    if flat is not None:
        return flat
    price = resolve_price(ModelEntry(model=model))
    return price.input_per_token, price.output_per_token


def simulate(mix: simulator.Mix, judge: JudgeConfig) -> dict[str, Any]:
    """The simulator's figures for `mix`; raises ConfigError for a model with no price."""
    template_tokens = judge_template_tokens(judge.prompt, judge.prompt_dir)
    return simulator.simulate(mix, template_tokens, litellm_prices)
