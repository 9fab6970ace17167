"""The judge's one structured-output call to its model, priced; any failure is an UpstreamError."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from judge_router.config import ModelEntry
from judge_router.upstream.litellm_runtime import classify, first_line, load_litellm
from judge_router.upstream.prices import Pricer
from judge_router.upstream.redact import Redactor


class UpstreamError(Exception):
    """A provider call failed: transport error, timeout, HTTP error or unusable answer."""

    def __init__(self, model: str, kind: str, message: str, status_code: int | None = None):
        super().__init__(f"{model}: {kind}: {message}")
        self.model = model
        self.kind = kind
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class JudgeReply:
    content: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float


class StructuredCaller:
    """Asks one model for a JSON answer in a given response format."""

    def __init__(self, pricer: Pricer, redact: Redactor):
        self._pricer = pricer
        self._redact = redact
        self._litellm = load_litellm()

    async def __call__(
        self,
        entry: ModelEntry,
        messages: list[dict[str, str]],
        response_format: dict[str, Any],
        timeout_s: float,
        max_tokens: int,
    ) -> JudgeReply:
        started = time.perf_counter()
        try:
            response = await self._litellm.acompletion(
                model=entry.model,
                messages=messages,
                response_format=response_format,
                timeout=timeout_s,
                max_tokens=max_tokens,
                num_retries=0,
                drop_params=True,
                **entry.litellm_params.call_kwargs(),
            )
        except Exception as exc:
            kind, status = classify(exc)
            raise UpstreamError(entry.model, kind, self._redact(first_line(exc)), status) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            content = response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise UpstreamError(
                entry.model, "invalid_response", "no message in the answer"
            ) from None
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return JudgeReply(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=self._pricer.cost(entry.model, prompt_tokens, completion_tokens),
            latency_ms=latency_ms,
        )
