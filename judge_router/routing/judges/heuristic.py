"""The local heuristic judge: scores surface cues of difficulty into a tier, offline, in microseconds."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from judge_router.routing.conversation import JudgedView
from judge_router.types import Source, Tier, Verdict

CODE = re.compile(
    r"```|\bdef \w+\(|\bfunction\s+\w+\s*\(|\bclass \w+|#include|\bimport \w+|=>|\bSELECT\b.+\bFROM\b"
    r"|\bpublic static\b|\bfn \w+\(|;\s*\n|\{\s*\n",
    re.IGNORECASE | re.DOTALL,
)
_CODING_TASK = re.compile(
    r"\b(write|implement|build|refactor|create)\b.{0,40}\b(function|script|class|program|module|"
    r"query|regex|endpoint|api|algorithm|parser|python|javascript|typescript|rust|go|java|sql|bash)\b",
    re.IGNORECASE,
)
_DEBUG = re.compile(
    r"\b(traceback|exception|stack ?trace|segfault|race condition|deadlock|memory leak|"
    r"undefined behavio|bug|doesn'?t work|fails? (?:with|when)|error:)",
    re.IGNORECASE,
)
MATH = re.compile(
    r"\\(?:frac|sum|int|sqrt|prod|lim|binom)|\$[^$]+\$|\b(?:integral|derivative|matrix|eigen\w*|"
    r"probability|modulo|polynomial|equation|inequality)\b|[a-z]\^\d|\d+\s*[*/^]\s*\d+",
    re.IGNORECASE,
)
_PROOF = re.compile(
    r"\b(prove|proof|show that|theorem|lemma|rigorous|formally verify|derive)\b", re.IGNORECASE
)
_REASONING = re.compile(
    r"\b(step[- ]by[- ]step|why|analy[sz]e|compare|trade-?offs?|design|architect\w*|optimi[sz]e|"
    r"strateg\w*|plan|evaluate|justify|implications?|edge cases?|complexity|scal\w+|concurren\w+|"
    r"distributed|consisten\w+|critique|pros and cons)\b",
    re.IGNORECASE,
)
_CONSTRAINT = re.compile(
    r"\b(must|should|at least|at most|no more than|without|ensure|exactly|require[sd]?|"
    r"constraints?|assume)\b",
    re.IGNORECASE,
)
_EASY = re.compile(
    r"^\s*(hi|hello|thanks|thank you)\b|\b(what is the capital|translate|fix (?:the )?typos|"
    r"spell(?:ing)?|define|synonym|one word|one sentence|yes or no|true or false|convert .* to)\b",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)

MEDIUM_AT = 1  # score thresholds, tuned on benchmarks/samples.jsonl (so in-sample there)
HIGH_AT = 4


@dataclass(frozen=True, slots=True)
class Score:
    points: int
    cues: tuple[str, ...]


def score(text: str, tokens: int) -> Score:
    """Add up difficulty cues; each cue is capped so that no single one decides the tier."""
    points = 0
    cues: list[str] = []

    def add(amount: int, cue: str) -> None:
        nonlocal points
        if amount:
            points += amount
            cues.append(cue)

    add(0 if tokens < 40 else 1 if tokens < 200 else 2 if tokens < 800 else 3, f"{tokens} tokens")
    add(2 if CODE.search(text) else 0, "code")
    add(2 if _CODING_TASK.search(text) else 0, "coding task")
    add(min(len(_DEBUG.findall(text)), 2), "debugging")
    add(min(len(MATH.findall(text)), 2), "math notation")
    add(3 if _PROOF.search(text) else 0, "proof")
    add(min(len({m.lower() for m in _REASONING.findall(text)}), 3), "reasoning cues")
    questions = text.count("?")
    constraints = len(_CONSTRAINT.findall(text)) + len(_LIST_ITEM.findall(text))
    add(min((questions + constraints) // 2, 3), "questions/constraints")
    add(-2 if _EASY.search(text) else 0, "simple task")
    return Score(points, tuple(cues))


def tier_for(points: int) -> Tier:
    if points >= HIGH_AT:
        return Tier.HIGH
    if points >= MEDIUM_AT:
        return Tier.MEDIUM
    return Tier.LOW


class HeuristicJudge:
    """Rates by surface features; never fails, never calls out."""

    name = "heuristic"
    version = f"score-{MEDIUM_AT}-{HIGH_AT}"
    cacheable = False  # scoring takes microseconds: less than a cache lookup

    async def rate(self, view: JudgedView) -> Verdict:
        return self.rate_now(view)

    def rate_now(self, view: JudgedView, judge_error: str | None = None) -> Verdict:
        started = time.perf_counter()
        result = score(view.text, view.prompt_tokens)
        cues = ", ".join(result.cues) if result.cues else "no difficulty cues"
        return Verdict(
            tier=tier_for(result.points),
            reason=f"heuristic score {result.points}: {cues}",
            source=Source.HEURISTIC,
            latency_ms=(time.perf_counter() - started) * 1000,
            judge_model=self.name,
            judge_error=judge_error,
        )
