"""The quality sections of the config: the grader, the cascade, shadow tests and quality sampling.

Every field's `description` is the text of docs/configuration.md's table (a test compares them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from judge_router.config_sections import LitellmParams, ModelEntry
from judge_router.types import Tier

CheckName = Literal["not_empty", "not_truncated", "not_refusal", "valid_json", "tool_args_valid"]
ALL_CHECKS: list[CheckName] = [
    "not_empty", "not_truncated", "not_refusal", "valid_json", "tool_args_valid"
]  # fmt: skip


class GraderConfig(BaseModel):
    """The LLM that scores an answer from 1 to 10, asked like the judge (structured output)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="gpt-5-nano", min_length=1, description="litellm model name")
    litellm_params: LitellmParams = Field(
        default_factory=LitellmParams,
        description="as for the judge: `api_base`, `api_key`, prices, any litellm argument",
    )
    timeout_s: float = Field(
        default=10.0, gt=0, description="grader call timeout; past it the grade is recorded "
        "as failed (the request is never failed for it)",
    )  # fmt: skip
    max_input_tokens: int = Field(
        default=2000,
        ge=100,
        description="the most conversation and answer tokens the grader is shown (the middle of "
        "a longer text is cut)",
    )
    max_output_tokens: int = Field(default=300, ge=16, description="the grader's completion budget")
    prompt: str = Field(
        default="grader-v1",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="prompt file name (without `.md`); its name and digest are recorded with "
        "each grade",
    )
    prompt_dir: Path | None = Field(
        default=None,
        description="a directory of your own prompt files",
        json_schema_extra={"shown_default": "shipped `prompts/`"},
    )

    @property
    def entry(self) -> ModelEntry:
        return ModelEntry(model=self.model, litellm_params=self.litellm_params)


class CascadeConfig(BaseModel):
    """`strategy: cascade`: answer with a cheap tier, check the answer, escalate on failure."""

    model_config = ConfigDict(extra="forbid")

    start: Literal["cheapest", "judged"] = Field(
        default="cheapest",
        description="the first tier tried: `cheapest` (`low`, and the judge is not asked) or "
        "`judged` (the judge's tier)",
    )
    checks: list[CheckName] = Field(
        default_factory=lambda: list(ALL_CHECKS),
        description="the checks an answer must pass: `not_empty`, `not_truncated`, "
        "`not_refusal`, `valid_json`, `tool_args_valid` (see docs/quality.md)",
        json_schema_extra={"shown_default": "all five"},
    )
    grader_min_score: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="also grade each answer (`grader`) and escalate below this score",
        json_schema_extra={"shown_default": "off"},
    )
    refusal_patterns: list[str] | None = Field(
        default=None,
        description="regular expressions that mark the start of an answer as a refusal",
        json_schema_extra={"shown_default": "the shipped list (docs/quality.md)"},
    )
    stream: Literal["buffer", "refuse"] = Field(
        default="buffer",
        description="a streamed request under a cascade: `buffer` (the answer is held until it "
        "passes, then sent) or `refuse` (400)",
    )

    @field_validator("refusal_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str] | None) -> list[str] | None:
        for pattern in patterns or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"refusal pattern {pattern!r} is not a valid regex: {exc}"
                ) from None
        return patterns


class ShadowTest(BaseModel):
    """A candidate model answering a share of requests in the background, graded against the
    answer the client got."""

    model_config = ConfigDict(extra="forbid")

    candidate: ModelEntry = Field(description="a model entry, as in a tier")
    share_pct: float = Field(
        default=10.0, gt=0, le=100, description="share of requests, by their prompt hash "
        "salted with the candidate's name",
    )  # fmt: skip
    tiers: list[Tier] = Field(
        default_factory=lambda: [Tier.HIGH],
        min_length=1,
        description="the tiers whose requests are compared",
    )
    grade: bool = Field(default=True, description="grade both answers with `grader`")
    max_usd_per_day: float = Field(
        default=1.0, gt=0, allow_inf_nan=False, description="stop for the UTC day past this "
        "spend (the candidate's answers and the grades)",
    )  # fmt: skip
    max_concurrent: int = Field(default=2, ge=1, le=64, description="candidate comparisons at once")
    max_queued: int = Field(
        default=100, ge=1, le=100_000, description="comparisons waiting; beyond it they are "
        "dropped and counted",
    )  # fmt: skip

    @property
    def name(self) -> str:
        return self.candidate.name


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_pct: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="share of answered requests graded in the background (`0`: off)",
    )
    grader: GraderConfig | None = Field(
        default=None,
        description="the grader for sampled answers",
        json_schema_extra={"shown_default": "`grader`"},
    )
    alert_below: float | None = Field(
        default=None,
        ge=1,
        le=10,
        description="log a warning when a tier's rolling mean score falls below this",
        json_schema_extra={"shown_default": "off"},
    )
    window: int = Field(
        default=100, ge=1, le=100_000, description="the grades a rolling mean is taken over"
    )
    max_usd_per_day: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="stop grading samples for the day past this grader spend",
        json_schema_extra={"shown_default": "no limit"},
    )
    max_concurrent: int = Field(default=2, ge=1, le=64, description="grader calls at once")
    max_queued: int = Field(
        default=1000, ge=1, le=100_000, description="answers waiting; beyond it they are dropped "
        "and counted",
    )  # fmt: skip


def check_shadow_tests(tests: list[ShadowTest]) -> None:
    """One shadow test per candidate: the report keys its pairs by the candidate's name."""
    seen: set[str] = set()
    for index, test in enumerate(tests):
        if test.name in seen:
            raise ValueError(f"shadow[{index}]: candidate {test.name!r} is tested twice")
        seen.add(test.name)


def used_graders(
    grader: GraderConfig, cascade: CascadeConfig, shadow: list[ShadowTest], quality: QualityConfig
) -> list[GraderConfig]:
    """The graders that will be called (to be priced and given credentials): the cascade's when
    it grades (any request may ask for a cascade), the shadow tests' and the sampler's."""
    used = []
    if cascade.grader_min_score is not None or any(test.grade for test in shadow):
        used.append(grader)
    if quality.sample_pct > 0:
        used.append(quality.grader or grader)
    return list({g.model: g for g in reversed(used)}.values())
