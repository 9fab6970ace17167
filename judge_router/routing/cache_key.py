"""The verdict cache key: a tagged blake2b of canonical JSON of what the judge saw and who judged."""

from __future__ import annotations

import hashlib
import json

from judge_router.routing.conversation import JudgedView

# Bump when the key's inputs or the stored value change shape: old entries then simply stop matching.
KEY_FORMAT = "jr-verdict-v1"


def cache_key(view: JudgedView, judge_model: str, prompt_version: str) -> str:
    """Tagged blake2b of canonical JSON of {what the judge saw, judge model, judge version}."""
    canonical = json.dumps(
        {
            "turns": [[turn.role, turn.text] for turn in view.turns],
            "judge_model": judge_model,
            "prompt": prompt_version,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()
    return f"{KEY_FORMAT}:{digest}"
