"""Token counting and head-and-tail truncation with tiktoken, working offline."""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

import tiktoken

ENCODING_NAME = (
    "o200k_base"  # the gpt-4o / gpt-5 family's encoding; an estimate for other providers
)


def _point_tiktoken_at_bundled_files() -> None:
    # tiktoken downloads encodings on first use; litellm ships them, so use those files when the
    # user has not chosen a cache dir. Found by path so we need not import litellm (4-5 s) here.
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    bundled = (
        Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    )
    if bundled.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)


@cache
def encoding() -> tiktoken.Encoding:
    _point_tiktoken_at_bundled_files()
    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def encode(text: str) -> list[int]:
    return encoding().encode_ordinary(text)


def cut_middle(text: str, max_tokens: int, tokens: list[int] | None = None) -> tuple[str, int]:
    """Keep the head and tail of `text` within `max_tokens`; returns (text, tokens it now has).

    Pass `tokens` when the text is already encoded: encoding a long prompt is the expensive part.
    """
    if tokens is None:
        if len(text) <= max_tokens:  # a token is at least one character: nothing to cut
            return text, count_tokens(text)
        tokens = encode(text)
    if len(tokens) <= max_tokens:
        return text, len(tokens)
    marker = f"\n[... {len(tokens) - max_tokens} tokens omitted ...]\n"
    budget = max(max_tokens - count_tokens(marker), 2)
    head = budget // 2
    tail = budget - head
    enc = encoding()
    cut = enc.decode(tokens[:head]) + marker + enc.decode(tokens[-tail:])
    return cut, head + tail + count_tokens(marker)
