"""SQLite ledger: one append-only row per decision, schema by named migrations, writes never raise."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judge_router.accounting.stats import summarise

log = logging.getLogger(__name__)

# Comments go on their own line before a statement: SQLite keeps an ADD COLUMN's trailing text,
# comment included, in the table's schema, where it would swallow the closing parenthesis.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_decisions",
        """
        CREATE TABLE decisions (
            request_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,            -- ISO 8601, UTC
            endpoint TEXT NOT NULL,              -- route | complete | chat | cli
            prompt_hash TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,                 -- the model chosen (or that answered, when proxied)
            source TEXT NOT NULL,                -- llm | heuristic | cache | forced | fallback
            cached INTEGER NOT NULL,
            reason TEXT NOT NULL,
            judge_model TEXT NOT NULL,
            judge_error TEXT,
            judge_cost_usd REAL NOT NULL,
            judge_latency_ms REAL NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            estimated_cost_usd REAL NOT NULL,
            baseline_model TEXT NOT NULL,
            estimated_baseline_cost_usd REAL NOT NULL,
            latency_ms REAL NOT NULL,
            metadata TEXT                        -- JSON, as the caller sent it
        );
        CREATE INDEX decisions_created_at ON decisions(created_at);
        """,
    ),
    (
        "002_completions",
        """
        ALTER TABLE decisions ADD COLUMN status TEXT NOT NULL DEFAULT 'routed';
            -- routed (/route: no call made) | ok | error (every model failed) | incomplete
        ALTER TABLE decisions ADD COLUMN routed_model TEXT;   -- first choice (model: who answered)
        ALTER TABLE decisions ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE decisions ADD COLUMN completion_tokens INTEGER;
        ALTER TABLE decisions ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE decisions ADD COLUMN cost_usd REAL;           -- realised: actual usage priced
        ALTER TABLE decisions ADD COLUMN baseline_cost_usd REAL;  -- same usage on the baseline
        ALTER TABLE decisions ADD COLUMN saved_usd REAL;          -- baseline - realised - judge
        ALTER TABLE decisions ADD COLUMN upstream_latency_ms REAL;
        ALTER TABLE decisions ADD COLUMN attempts TEXT;           -- JSON [{model, error}]
        ALTER TABLE decisions ADD COLUMN error TEXT
        """,
    ),
    (
        "003_callers_and_prompts",
        """
        -- the service key's id, never the key
        ALTER TABLE decisions ADD COLUMN api_key_id TEXT;
        -- only with ledger.store_prompts: true
        ALTER TABLE decisions ADD COLUMN prompt_text TEXT
        """,
    ),
]


@dataclass(slots=True)
class LedgerRow:
    request_id: str
    endpoint: str
    prompt_hash: str
    tier: str
    model: str
    source: str
    cached: bool
    reason: str
    judge_model: str
    judge_error: str | None
    judge_cost_usd: float
    judge_latency_ms: float
    prompt_tokens: int
    estimated_cost_usd: float
    baseline_model: str
    estimated_baseline_cost_usd: float
    latency_ms: float
    metadata: dict[str, Any] | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # Filled when the request was proxied (/complete, /v1/chat/completions).
    status: str = "routed"
    routed_model: str | None = None
    stream: bool = False
    completion_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    saved_usd: float | None = None
    upstream_latency_ms: float | None = None
    attempts: list[dict[str, Any]] | None = None
    error: str | None = None
    api_key_id: str | None = None
    prompt_text: str | None = None

    def as_params(self) -> dict[str, Any]:
        # A shallow copy: dataclasses.asdict deep-copies and costs ~15x more per row.
        params = {name: getattr(self, name) for name in _ROW_FIELDS}
        for flag in ("cached", "stream", "usage_estimated"):
            params[flag] = int(params[flag])
        for blob in ("metadata", "attempts"):
            params[blob] = None if params[blob] is None else json.dumps(params[blob])
        return params


_ROW_FIELDS = tuple(LedgerRow.__dataclass_fields__)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed row survives the process dying; only power loss can cost the
    # last transactions, and it keeps a commit per request cheap.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database has not seen; returns their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another worker may have applied it meanwhile.
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


class Ledger:
    """Appends rows; when SQLite fails, keeps up to `max_pending` rows in memory and retries later."""

    def __init__(self, path: Path, max_pending: int = 10_000):
        self.path = path
        self.write_errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        # Rows not yet on disk, each with whether it replaces a provisional row of the same id.
        self._pending: deque[tuple[LedgerRow, bool]] = deque()
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._insert = self._replace = ""
        self._open()

    def _open(self) -> bool:
        try:
            conn = connect(self.path)
            migrate(conn)
            self._conn = conn
            names = list(LedgerRow.__dataclass_fields__)
            columns = f"decisions ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
            self._insert = f"INSERT INTO {columns}"
            self._replace = f"INSERT OR REPLACE INTO {columns}"
            return True
        except (sqlite3.Error, OSError) as exc:
            self._note_error("open", exc)
            return False

    def _note_error(self, action: str, exc: Exception) -> None:
        self.write_errors += 1
        self.last_error = f"{action}: {type(exc).__name__}: {exc}"
        log.error("ledger %s failed at %s: %s", action, self.path, exc)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, row: LedgerRow, replace: bool = False) -> bool:
        """Append `row` (and any rows waiting from earlier failures). True when all are on disk.

        `replace`: the row supersedes a provisional row with the same request id (a stream's row,
        written once its first chunk is out and again when it ends).
        """
        with self._lock:
            self._pending.append((row, replace))
        return self._flush_pending()

    def _flush_pending(self) -> bool:
        with self._lock:
            if self._conn is None and not self._open():
                self._trim()
                return False
            assert self._conn is not None
            rows = list(self._pending)
            try:
                if len(rows) == 1:  # the usual case: one statement, committed on its own
                    self._write(*rows[0])
                else:  # rows that waited out a failure go in together, in order, or not at all
                    self._conn.execute("BEGIN")
                    for row, replace in rows:
                        self._write(row, replace)
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                self._note_error("write", exc)
                if isinstance(exc, sqlite3.IntegrityError):
                    # Not a passing failure: such a row would block every later write. Write the
                    # rows one by one and drop (and count) only those the schema refuses.
                    return self._write_each()
                self._trim()
                return False
            self._pending.clear()
            return True

    def _write(self, row: LedgerRow, replace: bool) -> None:
        assert self._conn is not None
        self._conn.execute(self._replace if replace else self._insert, row.as_params())

    def _write_each(self) -> bool:
        """Write the waiting rows one at a time; False if any was refused (and dropped) or failed."""
        all_written = True
        while self._pending:
            try:
                self._write(*self._pending[0])
            except sqlite3.IntegrityError as exc:
                log.error(
                    "ledger row %s refused and dropped: %s", self._pending[0][0].request_id, exc
                )
                self.dropped += 1
                all_written = False
            except sqlite3.Error as exc:
                self._note_error("write", exc)
                self._trim()
                return False
            self._pending.popleft()
        return all_written

    def _trim(self) -> None:
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1

    def rows(self, since: str | None = None) -> list[dict[str, Any]]:
        """Every row (oldest first), optionally from an ISO timestamp on."""
        query = "SELECT * FROM decisions"
        params: tuple[Any, ...] = ()
        if since:
            query += " WHERE created_at >= ?"
            params = (since,)
        query += " ORDER BY created_at"
        if self._conn is not None:
            with self._lock:
                result = [dict(row) for row in self._conn.execute(query, params)]
        else:  # the ledger is not open (it failed): read what is on disk with a short-lived connection
            conn = connect(self.path)
            try:
                result = [dict(row) for row in conn.execute(query, params)]
            finally:
                conn.close()
        for row in result:
            for blob in ("metadata", "attempts"):
                if row.get(blob):
                    row[blob] = json.loads(row[blob])
        return result

    def summary(self, since: str | None = None) -> dict[str, Any]:
        """Savings totals and breakdowns (see stats.py); reads with its own connection."""
        conn = connect(self.path)
        try:
            migrate(conn)
            return summarise(conn, since)
        finally:
            conn.close()

    def writable(self) -> bool:
        """Whether the ledger can take a write now (for /healthz)."""
        with self._lock:
            if self._conn is None and not self._open():
                return False
            assert self._conn is not None
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("ROLLBACK")
                return True
            except sqlite3.Error as exc:
                self._note_error("probe", exc)
                return False

    def close(self) -> None:
        """Flush rows still waiting (if the ledger is writable again), then close."""
        if self._pending:
            self._flush_pending()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
