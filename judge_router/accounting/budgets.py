"""What a budget counts: a row's spend, whose spend it is, and a month's spend per scope in one scan.

A row's spend is what it cost: the judge's verdict plus the answer's realised price, or, for a
`/route` decision (status `routed`, no model called), its estimate. A request every model failed
cost only its verdict. The Python and the SQL below say the same thing; a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from judge_router.accounting.ledger_row import LedgerRow
from judge_router.accounting.read_connection import ReadConnection
from judge_router.config_policy import Budget, MetadataValue

ROW_SPEND_SQL = (
    "(judge_cost_usd + COALESCE(cost_usd, "
    "CASE WHEN status = 'routed' THEN estimated_cost_usd ELSE 0 END))"
)


def row_spend(row: LedgerRow) -> float:
    if row.cost_usd is not None:
        answer = row.cost_usd
    else:
        answer = row.estimated_cost_usd if row.status == "routed" else 0.0
    return row.judge_cost_usd + answer


@dataclass(frozen=True, slots=True)
class SpendScope:
    """Whose rows a budget adds up: everyone's, one metadata value's, or one service key's."""

    metadata_key: str | None = None
    metadata_value: MetadataValue | None = None
    api_key_id: str | None = None

    @classmethod
    def of(cls, budget: Budget) -> SpendScope:
        scope = budget.scope
        if scope is None:
            return cls()
        return cls(scope.metadata, budget.value if scope.metadata else None, scope.api_key_id)

    def covers(self, metadata: Mapping[str, Any] | None, api_key_id: str | None) -> bool:
        if self.api_key_id is not None:
            return api_key_id == self.api_key_id
        if self.metadata_key is not None:
            value = (metadata or {}).get(self.metadata_key)
            # As rules match: a scalar equal to the budget's value (True == 1, as in SQLite).
            return isinstance(value, str | int | float | bool) and value == self.metadata_value
        return True

    def sql(self, index: int, params: dict[str, Any]) -> str:
        """The condition a row must meet, its parameters added to `params`."""
        if self.api_key_id is not None:
            params[f"key_{index}"] = self.api_key_id
            return f"api_key_id = :key_{index}"
        if self.metadata_key is not None:
            # The key is quoted as a JSON path label; the config refuses `"` and `\` in it.
            path = f":path_{index}"
            params[f"path_{index}"] = f'$."{self.metadata_key}"'
            value = self.metadata_value
            # As covers(): a string equals only a JSON string, a number or a boolean a number or a
            # boolean of the same value (true = 1). json_valid first: a row whose metadata cannot
            # be parsed (Python's json writes NaN) is out of scope, instead of failing every
            # refresh. Written once for SQLite and PostgreSQL (read_connection.py).
            if isinstance(value, str):
                params[f"value_{index}"] = value
                kinds, extracted = "('text')", f"json_extract(metadata, {path})"
            else:
                params[f"value_{index}"] = float(value) if value is not None else None
                kinds = "('integer', 'real', 'true', 'false')"
                extracted = f"CAST(json_extract(metadata, {path}) AS DOUBLE PRECISION)"
            return (
                f"(CASE WHEN json_valid(metadata) THEN CASE WHEN json_type(metadata, {path}) IN "
                f"{kinds} THEN {extracted} END END) = :value_{index}"
            )
        return "1 = 1"


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The first instant of `moment`'s UTC month and of the next one."""
    moment = moment.astimezone(UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return start, datetime(year, month, 1, tzinfo=UTC)


def spend_by_scope(
    conn: ReadConnection, scopes: Sequence[SpendScope], start: str, end: str
) -> list[float]:
    """Each scope's spend over the rows created in [start, end) (ISO strings), in one scan."""
    if not scopes:
        return []
    params: dict[str, Any] = {"start": start, "end": end}
    columns = ", ".join(
        f"COALESCE(SUM(CASE WHEN {scope.sql(i, params)} THEN {ROW_SPEND_SQL} END), 0.0)"
        for i, scope in enumerate(scopes)
    )
    query = f"SELECT {columns} FROM decisions WHERE created_at >= :start AND created_at < :end"
    return [float(value) for value in conn.execute(query, params).fetchone()]
