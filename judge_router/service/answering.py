"""Answering a decided request: call the strategy, price the answer, record the row, say what happened.

No HTTP here: the serving layer turns an Answer into a JSON body, a stream into SSE, and
AnswerFailed into a status code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.outcome_row import OutcomeRow
from judge_router.quality.answer_text import answer_text
from judge_router.routing.conversation import message_text
from judge_router.routing.tokens import count_tokens
from judge_router.service.direct import AnswerStrategy, Trail
from judge_router.service.ledger_rows import PricedUsage, RowBuilder, Served
from judge_router.types import Decision
from judge_router.upstream.model_chain import AllAttemptsFailed, Attempt, StreamStarted
from judge_router.upstream.sendable import UnsendableRequest
from judge_router.upstream.sse_reader import without

log = logging.getLogger(__name__)

Record = Callable[[LedgerRow], Awaitable[None]]
RecordOutcome = Callable[[OutcomeRow], Awaitable[bool]]


@dataclass(slots=True)
class Answered:
    """A request the client got an answer to, as the quality loop sees it once its row is written:
    what was asked, who answered, what the answer said and what it cost."""

    decision: Decision
    params: dict[str, Any]  # what went to the provider, `messages` included
    model: str
    text: str  # the answer's text (tool calls as `[tool call NAME(ARGUMENTS)]`)
    usage: PricedUsage
    stream: bool
    response: dict[str, Any] | None = None  # the whole chat completion (None for a stream)


# Told of every answered request; must return at once (background work is queued, never awaited).
AnswerObserver = Callable[[Answered], None]


class AnswerFailed(Exception):
    """No model answered. `refused`: the request itself was at fault (a client error): every
    provider rejected it, or it could not be sent at all. Its ledger row is `request_id`."""

    def __init__(self, refused: bool, message: str, attempts: list[Attempt], request_id: str):
        super().__init__(message)
        self.refused = refused
        self.message = message
        self.attempts = attempts
        self.request_id = request_id


class StreamBroke(Exception):
    """The provider broke off a stream after its first chunk; the row says so."""


@dataclass(slots=True)
class Answer:
    decision: Decision
    model: str
    response: dict[str, Any]
    attempts: list[Attempt]
    usage: PricedUsage | None
    trail: Trail | None = None  # a cascade's steps


class OpenStream:
    """A stream whose first chunk has arrived. `chunks` raises StreamBroke if the provider breaks
    off; `aclose()` must be called however the response ends (it records the row and stops the
    provider's stream, also when the client left before `chunks` was ever started)."""

    def __init__(
        self,
        decision: Decision,
        opened: StreamStarted,
        relay: Callable[[OpenStream], AsyncIterator[dict[str, Any]]],
        abandon: Callable[[], Awaitable[None]],
        trail: Trail | None = None,
    ):
        self.decision = decision
        self.trail = trail
        self.model = opened.model
        self.attempts = opened.attempts
        self.started = False
        self.usage: PricedUsage | None = None  # set once the stream has ended and is priced
        self.chunks = relay(self)
        self._abandon = abandon
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.started:
            await self.chunks.aclose()  # type: ignore[attr-defined]  # the relay's finally records
        else:
            await self._abandon()


class Answering:
    def __init__(
        self,
        strategies: Mapping[str, AnswerStrategy],
        rows: RowBuilder,
        record: Record,
        record_provisional: Record,
        record_outcome: RecordOutcome,
    ):
        self.strategies = strategies  # by name: a decision's `strategy` picks one
        self.rows = rows
        self.record = record
        self.record_provisional = record_provisional
        self.record_outcome = record_outcome
        self.observers: list[AnswerObserver] = []

    async def _record_trail(self, decision: Decision, trail: Trail | None) -> None:
        """A cascade's steps as outcome rows, once the request's row is down."""
        if trail is None:
            return
        for outcome in trail.outcomes(decision.request_id):
            await self.record_outcome(outcome)

    def _answered(self, answered: Answered) -> None:
        for observe in self.observers:
            try:
                observe(answered)
            except Exception:  # the quality loop never costs the client its answer
                log.exception("answer observer failed for %s", answered.decision.request_id)

    async def _failed(
        self,
        decision: Decision,
        started: float,
        failure: AllAttemptsFailed | UnsendableRequest,
        stream: bool,
    ) -> AnswerFailed:
        if isinstance(failure, UnsendableRequest):  # refused before any model was tried
            attempts, listed = [], str(failure)
            refused, message = True, listed
        else:
            attempts = failure.attempts
            listed = "; ".join(f"{a.model}: {a.error}" for a in attempts)
            refused = failure.all_bad_requests
            message = f"every model {'refused the request' if refused else 'failed'}: {listed}"
        served = Served("error", decision.model, attempts, stream, error=listed)
        await self.record(self.rows.row(decision, started, served))
        return AnswerFailed(refused, message, attempts, decision.request_id)

    async def timed_out(
        self, decision: Decision, started: float, stream: bool, limit_s: float
    ) -> None:
        """Record the row of a request whose deadline passed before its answer (or first chunk).

        The provider may have billed the prompt: it is priced alone and marked estimated, as for
        a server that died mid-stream; the judge's cost is known and kept.
        """
        priced = self.rows.price(decision, decision.model, decision.prompt_tokens, 0, True)
        why = f"no answer within server.request_timeout_s ({limit_s} s)"
        served = Served("timeout", decision.model, [], stream, priced, error=why)
        with anyio.CancelScope(shield=True):
            await self.record(self.rows.row(decision, started, served))

    async def complete(self, decision: Decision, params: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        try:
            done, trail = await self.strategies[decision.strategy].complete(decision, params)
        except (AllAttemptsFailed, UnsendableRequest) as failure:
            raise await self._failed(decision, started, failure, stream=False) from None
        usage = self.rows.price(
            decision,
            done.model,
            done.prompt_tokens,
            done.completion_tokens,
            rejected_usd=rejected_usd(trail),
        )
        served = Served("ok", done.model, done.attempts, False, usage, done.latency_ms, trail=trail)
        await self.record(self.rows.row(decision, started, served))
        await self._record_trail(decision, trail)
        if self.observers:
            text = answer_text(done.response)
            self._answered(
                Answered(decision, params, done.model, text, usage, False, done.response)
            )
        return Answer(decision, done.model, done.response, done.attempts, usage, trail)

    async def stream(self, decision: Decision, params: dict[str, Any]) -> OpenStream:
        """Open the stream: models are tried in turn only until one sends its first chunk."""
        started = time.perf_counter()
        try:
            opened, trail = await self.strategies[decision.strategy].stream(decision, params)
        except (AllAttemptsFailed, UnsendableRequest) as failure:
            raise await self._failed(decision, started, failure, stream=True) from None

        async def abandon() -> None:  # the client left before a byte was sent
            priced = self.rows.price(
                decision, opened.model, decision.prompt_tokens, 0, True, rejected_usd(trail)
            )
            served = Served(
                "incomplete",
                opened.model,
                opened.attempts,
                True,
                priced,
                opened.first_chunk_ms,
                trail=trail,
            )
            with anyio.CancelScope(shield=True):
                await self.record(self.rows.row(decision, started, served))
                await self._record_trail(decision, trail)
                await _close(opened)

        return OpenStream(
            decision,
            opened,
            lambda stream: self._relay(stream, opened, decision, started, params),
            abandon,
            trail,
        )

    async def _relay(
        self,
        stream: OpenStream,
        opened: StreamStarted,
        decision: Decision,
        started: float,
        params: dict[str, Any],
    ) -> AsyncIterator[dict[str, Any]]:
        stream.started = True
        client_wants_usage = bool((params.get("stream_options") or {}).get("include_usage"))
        streamed: list[str] = []
        usage: dict[str, Any] | None = None
        status, error = "incomplete", None  # until the provider's stream ends normally
        created_at: str | None = None  # the provisional row's, once it is written

        trail = stream.trail
        rejected = rejected_usd(trail)

        def served(state: str, priced: PricedUsage, why: str | None = None) -> Served:
            return Served(
                state,
                opened.model,
                opened.attempts,
                True,
                priced,
                opened.first_chunk_ms,
                why,
                trail,
            )

        try:
            # A provider asked for usage sends `usage: null` on every chunk; a client that did
            # not ask sees no usage at all, as from OpenAI.
            yield opened.first_chunk if client_wants_usage else without(opened.first_chunk, "usage")
            _collect(opened.first_chunk, streamed)
            # The first byte is out and the provider is billing: put a provisional row on disk now
            # (incomplete, the prompt priced alone), so a crash mid-stream still leaves the request
            # in the ledger. The row written when the stream ends replaces it.
            estimate = self.rows.price(
                decision, opened.model, decision.prompt_tokens, 0, True, rejected
            )
            provisional = self.rows.row(decision, started, served("incomplete", estimate))
            # The final row replaces this one: it keeps its time, so the two are one row to
            # anything that counts by time (its rollup day, a budget's month and its refresh).
            created_at = provisional.created_at
            await self.record_provisional(provisional)
            async for chunk in opened.chunks:
                _collect(chunk, streamed)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                    if not chunk.get("choices") and not client_wants_usage:
                        continue  # we asked for usage to price the answer; the client did not
                if not client_wants_usage:
                    chunk = without(chunk, "usage")
                yield chunk
            status = "ok"
        except Exception as exc:  # the provider broke off mid-stream
            status, error = "error", f"stream broke: {type(exc).__name__}: {exc}"[:300]
            raise StreamBroke(error) from exc
        finally:
            if usage:
                priced = self.rows.price(
                    decision,
                    opened.model,
                    int(usage.get("prompt_tokens") or 0),
                    int(usage.get("completion_tokens") or 0),
                    rejected_usd=rejected,
                )
            else:  # cut short: price what was streamed, by our own count, and say it is estimated
                priced = self.rows.price(
                    decision,
                    opened.model,
                    decision.prompt_tokens,
                    count_tokens("".join(streamed)),
                    estimated=True,
                    rejected_usd=rejected,
                )
            stream.usage = priced
            with anyio.CancelScope(shield=True):  # record and stop the provider even if cancelled
                final = self.rows.row(decision, started, served(status, priced, error))
                if created_at is not None:
                    final.created_at = created_at
                await self.record(final)
                await self._record_trail(decision, trail)
                await _close(opened)
            if status == "ok" and self.observers:
                text = "".join(streamed)
                self._answered(Answered(decision, params, opened.model, text, priced, True))


def rejected_usd(trail: Trail | None) -> float:
    return trail.rejected_cost_usd if trail is not None else 0.0


async def _close(opened: StreamStarted) -> None:
    close = getattr(opened.chunks, "aclose", None)
    if close is not None:
        await close()
    await opened.close()


def _collect(chunk: dict[str, Any], streamed: list[str]) -> None:
    for choice in chunk.get("choices") or ():
        text = message_text((choice.get("delta") or {}).get("content"))
        if text:
            streamed.append(text)
