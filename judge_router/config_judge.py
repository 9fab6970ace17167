"""The judge's section of the config: which judge rates prompts, and how a local model joins it.

Every field's `description` is the text of docs/configuration.md's table (a test compares them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_router.config_sections import (
    HEURISTIC_JUDGE,
    CircuitBreakerConfig,
    LitellmParams,
    ModelEntry,
)


class JudgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="gpt-5-nano",
        min_length=1,
        description="litellm model name of the judge, or `heuristic` for the heuristic judge only",
    )
    litellm_params: LitellmParams = Field(
        default_factory=LitellmParams,
        description="as in LiteLLM's proxy config: `api_base`, `api_key`, `input_cost_per_token`, "
        "`output_cost_per_token`, and any other litellm argument (e.g. `reasoning_effort: minimal`)",
    )
    timeout_s: float = Field(
        default=5.0, gt=0, description="judge call timeout; past it the `on_failure` answer is used"
    )
    max_input_tokens: int = Field(
        default=1000, ge=50, description="the most conversation tokens the judge is shown"
    )
    max_output_tokens: int = Field(
        default=300,
        ge=16,
        description="the judge's completion budget (reasoning models spend some of it thinking)",
    )
    on_failure: Literal["heuristic", "low", "medium", "high"] = Field(
        default="heuristic",
        description="`heuristic`, or a fixed tier `low` / `medium` / `high`",
    )
    prompt: str = Field(
        default="judge-v1",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="prompt file name (without `.md`); its name and content are part of the "
        "cache key",
    )
    prompt_dir: Path | None = Field(
        default=None,
        description="a directory of your own prompt files",
        json_schema_extra={"shown_default": "shipped `prompts/`"},
    )
    circuit_breaker: CircuitBreakerConfig = Field(
        default_factory=CircuitBreakerConfig,
        description="after this many judge failures in a row, skip the judge (`on_failure` "
        "answers) for the cooldown",
    )

    mode: Literal["llm", "local", "hybrid"] = Field(
        default="llm",
        description="`llm` (the LLM judge), `local` (a trained model, `local_model`, rates every "
        "prompt) or `hybrid` (the local model first; the LLM judge when it is unsure)",
    )
    local_model: Path | None = Field(
        default=None,
        description="a model file written by `judge-router train`; also replaces the heuristic "
        "as `on_failure` answer (reloaded on SIGHUP or `POST /admin/reload`)",
        json_schema_extra={"shown_default": "none"},
    )
    local_threshold: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="`hybrid`: the local model answers when its top probability is at least "
        "this; below it the LLM judge does",
    )
    learn: bool = Field(
        default=False,
        description="store each request's feature vector (hashed n-grams, never the text) with "
        "its row, so its LLM verdict and outcomes can train a local model (`train --from-ledger`)",
    )

    @model_validator(mode="after")
    def _local_needs_a_model(self) -> JudgeConfig:
        if self.mode != "llm" and self.local_model is None:
            raise ValueError(f"judge.mode {self.mode} needs judge.local_model (a `train` output)")
        return self

    @property
    def is_heuristic(self) -> bool:
        return self.model == HEURISTIC_JUDGE

    @property
    def entry(self) -> ModelEntry:
        return ModelEntry(model=self.model, litellm_params=self.litellm_params)
