"""The litellm transport: every provider litellm knows, through `litellm.acompletion`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from judge_router.config import Settings
from judge_router.upstream.litellm_runtime import load_litellm
from judge_router.upstream.transport import OpenedStream, Reply, usage_tokens


class LitellmTransport:
    """Calls a model with its configured litellm keyword arguments."""

    name = "litellm"

    def __init__(self, settings: Settings):
        self._settings = settings
        self._kwargs_by_model: dict[str, dict[str, Any]] = {}
        self._litellm = load_litellm()

    def _model_kwargs(self, model: str) -> dict[str, Any]:
        """A model's configured litellm keyword arguments (built once: settings do not change)."""
        kwargs = self._kwargs_by_model.get(model)
        if kwargs is None:
            entry = self._settings.model_entry(model)
            kwargs = self._kwargs_by_model[model] = entry.litellm_params.call_kwargs()
        return kwargs

    def _call_kwargs(self, model: str, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return {
            "timeout": timeout_s,
            "num_retries": 0,  # the chain is the retry policy; hidden retries would hide latency
            "drop_params": True,
            **params,
            "model": model,
            **self._model_kwargs(model),
        }

    async def complete(self, model: str, params: dict[str, Any], timeout_s: float) -> Reply:
        response = await self._litellm.acompletion(**self._call_kwargs(model, params, timeout_s))
        prompt, completion = usage_tokens(getattr(response, "usage", None))
        return Reply(response.model_dump(), prompt, completion)

    async def stream(self, model: str, params: dict[str, Any], timeout_s: float) -> OpenedStream:
        response = await self._litellm.acompletion(**self._call_kwargs(model, params, timeout_s))
        iterator = response.__aiter__()
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            raise RuntimeError("the stream ended before any chunk") from None
        return OpenedStream(
            first.model_dump(exclude_none=True), _dumped(iterator), lambda: _close(iterator)
        )


async def _dumped(iterator: AsyncIterator[Any]) -> AsyncIterator[dict[str, Any]]:
    async for chunk in iterator:
        yield chunk.model_dump(exclude_none=True)


async def _close(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
