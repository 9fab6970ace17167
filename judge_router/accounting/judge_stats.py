"""What the local judge answered in /stats, and the LLM judge spend that spared.

A local verdict costs nothing; had the LLM judge rated that prompt instead, it would have cost
about what the LLM judge cost per verdict over the same rows. So the spend avoided is
`local_verdicts` x the mean `judge_cost_usd` of the rows the LLM judge answered (source `llm`),
that mean taken once over everything the summary covers (its `since` and filters) and used for
every breakdown: a day on which only the local model judged still has an estimate, and the
breakdowns add up to the totals. No LLM-judged row, no price to go by: the figure is null, never
a made-up 0.

The counts come from the same facts as every other figure (the daily rollups, or the scanned
decisions), so they cost no extra read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from judge_router.types import round_usd

# Added to stats.py's aggregates: summed per row of any breakdown.
LOCAL_AGGREGATES = """
    COALESCE(SUM(CASE WHEN source = 'local' THEN requests END), 0) AS local_verdicts
"""
# The mean's parts, summed once, with the totals (a breakdown uses the totals' mean).
LLM_VERDICT_COST = """
    COALESCE(SUM(CASE WHEN source = 'llm' THEN requests END), 0) AS llm_verdicts,
    COALESCE(SUM(CASE WHEN source = 'llm' THEN judge_cost_usd END), 0.0) AS llm_judge_cost
"""


def mean_llm_verdict_cost(totals: dict[str, Any]) -> float | None:
    """What an LLM verdict cost on average over the summary's rows (None without any), taking
    LLM_VERDICT_COST's columns out of `totals`: only the mean is shown."""
    verdicts, cost = totals.pop("llm_verdicts"), totals.pop("llm_judge_cost")
    return float(cost) / verdicts if verdicts else None


def add_local_figures(rows: Iterable[dict[str, Any]], mean_cost: float | None) -> None:
    """Give each row its local share (of the judged requests) and the spend avoided, in place."""
    for row in rows:
        local, judged = row["local_verdicts"], row["judged"]
        row["local_share"] = round(local / judged, 6) if judged else None
        row["judge_spend_avoided_usd"] = (
            round_usd(local * mean_cost) if mean_cost is not None else None
        )
