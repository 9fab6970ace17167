"""The application's feedback on one request: who may give it, and the outcome row it becomes.

No HTTP here: serving/feedback_api.py turns each FeedbackRefused into its status code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from judge_router.accounting.ledger import Ledger
from judge_router.accounting.outcome_row import OutcomeRow

log = logging.getLogger(__name__)

SOURCE = "feedback"
# Statuses whose request has an answer to score: `ok`; `incomplete`, a stream cut short (the client
# saw what was streamed); `routed`, a /route decision, answered by the application itself with the
# model /route chose. `error` and `timeout` rows sent no answer.
ANSWERED = frozenset({"ok", "incomplete", "routed"})


class FeedbackRefused(Exception):
    """Feedback that cannot be recorded; `message` says why, for the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownRequest(FeedbackRefused):
    """No decision has this request id."""


class NotYourRequest(FeedbackRefused):
    """Another key made the request, and the giver's key is not an admin key."""


class NoAnswer(FeedbackRefused):
    """The request was decided but never answered (every model failed, or the deadline passed)."""


class LedgerUnreadable(FeedbackRefused):
    """The ledger could not be read, so the request could not be looked up; worth a retry."""


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    score: float  # 0..1, as every outcome's
    comment: str | None
    giver: str | None  # the id of the key that sends it; None when no keys are configured
    admin: bool = False  # the giver's key is an admin key


@dataclass(frozen=True, slots=True)
class FeedbackRecorded:
    request_id: str
    model: str  # the model whose answer was scored
    tier: str
    score: float
    replaced: bool  # the request had feedback already (as far as the ledger shows)
    stored: bool  # committed; False: queued in memory until the ledger is writable again


def may_give(feedback: Feedback, owner: str | None) -> bool:
    """Without keys anyone may; with keys, the key that made the request (`owner`) or an admin."""
    return feedback.giver is None or feedback.admin or feedback.giver == owner


async def give(ledger: Ledger, feedback: Feedback) -> FeedbackRecorded:
    """Record `feedback` as the request's `feedback` outcome, replacing any earlier one.

    Raises a FeedbackRefused: UnknownRequest, NotYourRequest, NoAnswer or LedgerUnreadable.
    """
    request_id = feedback.request_id
    try:
        decision = await ledger.decision(request_id)
    except Exception as exc:  # whatever the store raised: the client can only retry
        raise _unreadable(request_id, exc) from exc
    if decision is None:
        raise UnknownRequest(f"no request with id {request_id!r} in the ledger")
    if not may_give(feedback, decision.get("api_key_id")):
        raise NotYourRequest(
            f"request {request_id!r} was made with another API key: only that key or an admin "
            "key may give feedback on it"
        )
    status = decision.get("status")
    if status not in ANSWERED:
        raise NoAnswer(
            f"request {request_id!r} has no answer to give feedback on (its status is {status!r}:"
            " no model answered it)"
        )
    model, tier = str(decision["model"]), str(decision["tier"])
    try:
        earlier = await ledger.outcomes_of(request_id)
    except Exception as exc:
        raise _unreadable(request_id, exc) from exc
    replaced = any(row["source"] == SOURCE and row["model"] == model for row in earlier)
    score = float(feedback.score) + 0.0  # an int 0 or 1 as a float; -0.0 as 0.0
    outcome = OutcomeRow(
        request_id=request_id,
        source=SOURCE,
        model=model,
        tier=tier,
        score=score,
        reason=feedback.comment,
        api_key_id=feedback.giver,
    )
    stored = await ledger.record_outcome(outcome)  # never raises; False: waits in memory
    return FeedbackRecorded(request_id, model, tier, score, replaced, stored)


def _unreadable(request_id: str, exc: Exception) -> LedgerUnreadable:
    log.error("feedback on %s: the ledger could not be read: %r", request_id, exc)
    return LedgerUnreadable(
        f"the ledger could not be read to look up request {request_id!r} "
        f"({type(exc).__name__}); retry later"
    )
