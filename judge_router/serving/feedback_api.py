"""POST /v1/feedback: the application scores an answer; the score becomes a `feedback` outcome."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from judge_router.accounting.ledger import Ledger
from judge_router.service.feedback import (
    Feedback,
    FeedbackRefused,
    LedgerUnreadable,
    NoAnswer,
    NotYourRequest,
    UnknownRequest,
    give,
)
from judge_router.serving.errors import ErrorBody, error_response
from judge_router.serving.json_response import FastJSONResponse as JSONResponse
from judge_router.serving.openapi import COMMON_ERRORS, errors
from judge_router.serving.request_body import documented, read

PATH = "/v1/feedback"


class FeedbackRequest(BaseModel):
    """A score for the answer to one request; sent again, it replaces the earlier one."""

    # strict: `"score": "0.5"` or `true` is a client error, not something to coerce.
    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str = Field(
        min_length=1,
        max_length=200,
        description="the request's id: its answer's `x-judge-router-request-id` header",
    )
    score: float = Field(
        ge=0, le=1, allow_inf_nan=False, description="0 (bad) to 1 (good); 0 and 1 may be integers"
    )
    comment: str | None = Field(
        default=None, max_length=2000, description="why; stored as the outcome's `reason`"
    )

    @field_validator("score", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # Strict parsing refuses them already; this covers the lax re-parse request_body falls
        # back to for JSON pydantic's parser refuses (lone surrogates).
        if isinstance(value, bool):
            raise ValueError("must be a number from 0 to 1, not a boolean")
        return value


class FeedbackAnswer(BaseModel):
    request_id: str
    model: str = Field(description="the model whose answer was scored")
    tier: str
    score: float
    replaced: bool = Field(description="the request had feedback already: this one replaced it")
    stored: bool = Field(
        description="true: committed to the ledger; false (with status 202): the ledger cannot "
        "be written now, and the row waits in memory until it can"
    )


# Each refusal's status and error type.
REFUSALS: dict[type[FeedbackRefused], tuple[int, str]] = {
    UnknownRequest: (404, "request_not_found"),
    NotYourRequest: (403, "permission_error"),
    NoAnswer: (409, "no_answer"),
    LedgerUnreadable: (503, "service_unavailable"),
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": FeedbackAnswer, "description": "accepted, not yet stored (`stored: false`)"},
    **errors(*COMMON_ERRORS, 400, 415, 503, 504),
    409: {"model": ErrorBody, "description": "no_answer: the request was never answered"},
}


def add_feedback_route(app: FastAPI, ledger: Ledger, timeout_s: float) -> None:
    """Declare POST /v1/feedback on `app`, recording into `ledger` within `timeout_s`."""

    @app.post(
        PATH,
        response_model=FeedbackAnswer,
        responses=RESPONSES,
        openapi_extra=documented(FeedbackRequest),
    )
    async def feedback(request: Request) -> JSONResponse:
        """Score the answer to a request, 0 (bad) to 1 (good), as a `feedback` outcome; the key
        that made the request or an admin key may; sent again, the score replaces the last."""
        body = await read(request, FeedbackRequest)
        given = Feedback(
            request_id=body.request_id,
            score=body.score,
            comment=body.comment,
            giver=getattr(request.state, "api_key_id", None),
            admin=bool(getattr(request.state, "api_key_admin", False)),
        )
        try:
            async with asyncio.timeout(timeout_s):
                recorded = await give(ledger, given)
        except FeedbackRefused as refused:
            status, kind = REFUSALS[type(refused)]
            return error_response(status, refused.message, kind)
        answer = FeedbackAnswer(
            request_id=recorded.request_id,
            model=recorded.model,
            tier=recorded.tier,
            score=recorded.score,
            replaced=recorded.replaced,
            stored=recorded.stored,
        )
        status = 200 if recorded.stored else 202  # 202: accepted, queued until the ledger heals
        return JSONResponse(answer.model_dump(mode="json"), status_code=status)
