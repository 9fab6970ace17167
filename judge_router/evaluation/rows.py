"""The rows `judge-router eval` works on, the readers its loaders share, and the --levels/--ladder specs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judge_router.evaluation.scores import Outcome
from judge_router.types import TIER_ORDER, Tier


class DatasetError(ValueError):
    """The data set cannot be read; the message names the file, the line and what to fix."""


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One labelled prompt. `outcomes` (RouterBench only) holds each ladder rung's score and cost."""

    id: str
    messages: list[dict[str, Any]]
    tier: Tier
    category: str | None = None
    outcomes: dict[Tier, Outcome] | None = None
    unsolved: bool = False  # no ladder rung was correct; labelled high (see cheapest_correct)


@dataclass(slots=True)
class Dataset:
    path: Path
    format: str
    rows: list[EvalRow]
    notes: list[str] = field(default_factory=list)
    ladder: dict[Tier, str] | None = None


def tier_value(value: Any, where: str) -> Tier:
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in {t.value for t in TIER_ORDER}:
        raise DatasetError(f"{where}: tier is {value!r}; expected one of low, medium, high")
    return Tier(text)


def parse_levels(spec: str) -> dict[int, Tier]:
    """'1-2:low,3:medium,4-5:high' -> {1: low, 2: low, 3: medium, 4: high, 5: high}."""
    mapping: dict[int, Tier] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?\s*:\s*(\w+)", part)
        if not match:
            raise DatasetError(f"--levels: cannot read {part!r}; expected e.g. 1-2:low,3:medium")
        first, last = int(match[1]), int(match[2] or match[1])
        if first > last:
            raise DatasetError(f"--levels: range {part!r} runs backwards")
        tier = tier_value(match[3], f"--levels {part!r}")
        for level in range(first, last + 1):
            if level in mapping:
                raise DatasetError(f"--levels: level {level} is mapped twice")
            mapping[level] = tier
    if not mapping:
        raise DatasetError("--levels is empty; expected e.g. 1-2:low,3:medium,4-5:high")
    return mapping


def parse_ladder(spec: str) -> dict[Tier, str]:
    """'low=A,medium=B,high=C' -> {low: A, medium: B, high: C}; every tier exactly once."""
    ladder: dict[Tier, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, model = part.partition("=")
        if not sep or not model.strip():
            raise DatasetError(f"--ladder: cannot read {part!r}; expected TIER=MODEL")
        tier = tier_value(name, f"--ladder {part!r}")
        if tier in ladder:
            raise DatasetError(f"--ladder: {tier.value} is given twice")
        ladder[tier] = model.strip()
    missing = [t.value for t in TIER_ORDER if t not in ladder]
    if missing:
        raise DatasetError(f"--ladder needs low, medium and high; missing: {', '.join(missing)}")
    return {tier: ladder[tier] for tier in TIER_ORDER}


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object per line")
        yield number, record


def require_text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: field {key!r} must be a non-empty string")
    return value
