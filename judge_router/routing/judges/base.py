"""The one interface every judge implements, and the error a judge raises when it cannot answer."""

from __future__ import annotations

from typing import Protocol

from judge_router.routing.conversation import JudgedView
from judge_router.types import Verdict


class Judge(Protocol):
    """Rates one conversation.

    `name` goes into the ledger's judge_model; `version` and `name` are part of the verdict cache
    key, so a new prompt, model or trained version never reads an older one's verdicts. `cacheable`
    says whether a verdict is worth keeping (the heuristic's is cheaper to recompute than to look
    up). `rate` returns None to abstain (the next judge of the chain answers) and raises JudgeError
    when it fails.
    """

    name: str
    cacheable: bool

    @property
    def version(self) -> str: ...  # read-only: a local judge's follows the model it has loaded

    async def rate(self, view: JudgedView) -> Verdict | None: ...


class JudgeError(Exception):
    """The judge gave no usable verdict; `kind` is short and goes into the ledger."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
