"""Per-token prices, and the range of usage where a flat price is provably the exact one.

litellm's `cost_per_token` is the authority (tiered prices above 128k/200k/272k prompt tokens,
provider quirks), but it takes ~0.25 ms a call and a proxied request needs four prices. So at start-up
each model's flat price is checked against litellm's exact price on a grid of usages; below the
largest grid point where every check agreed, the flat price *is* litellm's answer and is used
directly. Above it (or for a model whose price never matched) the request path asks litellm.
This module imports no litellm: the exact price comes in as a function.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Usages probed at start-up: small counts catch per-request minimums or odd rounding; the large ones
# are the context sizes where providers' long-context tiers start. Thresholds named in a model's
# price keys (e.g. `input_cost_per_token_above_200k_tokens`) are added on both sides.
PROBE_PROMPT_TOKENS = (0, 1, 7, 100, 1_000, 4_096, 10_000, 32_768, 100_000, 128_000, 200_000)
PROBE_PROMPT_TOKENS_LONG = (272_000, 512_000, 1_000_000, 2_000_000)
PROBE_COMPLETION_TOKENS = (0, 1, 300, 4_096, 65_536)
_THRESHOLD_KEY = re.compile(r"_above_(\d+)k_tokens")

ExactCost = Callable[[int, int], float]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token, from litellm's map or the config's override.

    `flat_prompt_limit` / `flat_completion_limit`: up to these token counts the flat price equals
    litellm's exact price (checked at start-up); -1 means it never does, so always ask litellm.
    A price from the config is flat by definition.
    """

    input_per_token: float
    output_per_token: float
    from_config: bool
    flat_prompt_limit: int = -1
    flat_completion_limit: int = -1

    def flat(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token

    def is_flat_for(self, prompt_tokens: int, completion_tokens: int) -> bool:
        return self.from_config or (
            prompt_tokens <= self.flat_prompt_limit
            and completion_tokens <= self.flat_completion_limit
        )


def thresholds(price_keys: Iterable[str]) -> set[int]:
    """Prompt-token counts where a model's price map says a tier starts (`..._above_200k_tokens`)."""
    found = set()
    for key in price_keys:
        match = _THRESHOLD_KEY.search(key)
        if match:
            found.add(int(match.group(1)) * 1000)
    return found


def flat_limits(flat: Price, exact: ExactCost, tier_starts: Iterable[int] = ()) -> Price:
    """`flat` with the largest probed usage below which it agrees with `exact` everywhere probed."""
    prompts = set(PROBE_PROMPT_TOKENS) | set(PROBE_PROMPT_TOKENS_LONG)
    for start in tier_starts:
        prompts.update((start - 1, start, start + 1))
    limit = -1
    for prompt_tokens in sorted(p for p in prompts if p >= 0):
        if not all(
            _same(exact(prompt_tokens, completion), flat.flat(prompt_tokens, completion))
            for completion in PROBE_COMPLETION_TOKENS
        ):
            break
        limit = prompt_tokens
    return Price(
        flat.input_per_token,
        flat.output_per_token,
        flat.from_config,
        flat_prompt_limit=limit,
        flat_completion_limit=PROBE_COMPLETION_TOKENS[-1] if limit >= 0 else -1,
    )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
