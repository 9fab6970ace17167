"""The ledger's SQLite schema as named migrations (recorded in `_migrations`), and how to connect."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from judge_router.accounting.dashboard_outcome_schema import DASHBOARD_OUTCOME_ROLLUPS
from judge_router.accounting.dashboard_schema import DASHBOARD_ROLLUPS

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
    (
        "004_daily_rollups",
        # What /stats adds up, kept per day, tier, model, source and status by triggers, so a
        # summary reads a few hundred rollup rows, not every decision. A replaced row (a stream's
        # final row) is deleted first, which the delete trigger subtracts (recursive_triggers).
        """
        CREATE TABLE decision_rollups (
            day TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            requests INTEGER NOT NULL,
            cache_hits INTEGER NOT NULL,
            judge_cost_usd REAL NOT NULL,
            cost_usd REAL NOT NULL,
            baseline_cost_usd REAL NOT NULL,
            estimated_cost_usd REAL NOT NULL,
            estimated_baseline_cost_usd REAL NOT NULL,
            PRIMARY KEY (day, tier, model, source, status)
        );
        CREATE TRIGGER decisions_rollup_insert AFTER INSERT ON decisions BEGIN
            INSERT INTO decision_rollups VALUES (
                substr(NEW.created_at, 1, 10), NEW.tier, NEW.model, NEW.source, NEW.status, 1,
                NEW.cached, NEW.judge_cost_usd, COALESCE(NEW.cost_usd, 0),
                COALESCE(NEW.baseline_cost_usd, 0), NEW.estimated_cost_usd,
                NEW.estimated_baseline_cost_usd
            ) ON CONFLICT (day, tier, model, source, status) DO UPDATE SET
                requests = requests + 1,
                cache_hits = cache_hits + excluded.cache_hits,
                judge_cost_usd = judge_cost_usd + excluded.judge_cost_usd,
                cost_usd = cost_usd + excluded.cost_usd,
                baseline_cost_usd = baseline_cost_usd + excluded.baseline_cost_usd,
                estimated_cost_usd = estimated_cost_usd + excluded.estimated_cost_usd,
                estimated_baseline_cost_usd =
                    estimated_baseline_cost_usd + excluded.estimated_baseline_cost_usd;
        END;
        CREATE TRIGGER decisions_rollup_delete AFTER DELETE ON decisions BEGIN
            UPDATE decision_rollups SET
                requests = requests - 1,
                cache_hits = cache_hits - OLD.cached,
                judge_cost_usd = judge_cost_usd - OLD.judge_cost_usd,
                cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0),
                baseline_cost_usd = baseline_cost_usd - COALESCE(OLD.baseline_cost_usd, 0),
                estimated_cost_usd = estimated_cost_usd - OLD.estimated_cost_usd,
                estimated_baseline_cost_usd =
                    estimated_baseline_cost_usd - OLD.estimated_baseline_cost_usd
            WHERE day = substr(OLD.created_at, 1, 10) AND tier = OLD.tier AND model = OLD.model
                AND source = OLD.source AND status = OLD.status;
        END;
        INSERT INTO decision_rollups
            SELECT substr(created_at, 1, 10), tier, model, source, status, COUNT(*), SUM(cached),
                SUM(judge_cost_usd), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(baseline_cost_usd), 0),
                SUM(estimated_cost_usd), SUM(estimated_baseline_cost_usd)
            FROM decisions GROUP BY 1, 2, 3, 4, 5
        """,
    ),
    (
        "005_policy",
        # Which rule matched, which rollout arm the request was in, which budget changed it; the
        # rollups gain the rule and the arm as keys, so /stats groups by them without a scan.
        """
        ALTER TABLE decisions ADD COLUMN rule TEXT;
        ALTER TABLE decisions ADD COLUMN arm TEXT NOT NULL DEFAULT 'routed';  -- routed | holdout
        ALTER TABLE decisions ADD COLUMN budget TEXT;
        DROP TRIGGER decisions_rollup_insert;
        DROP TRIGGER decisions_rollup_delete;
        DROP TABLE decision_rollups;
        CREATE TABLE decision_rollups (
            day TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            rule TEXT NOT NULL,  -- '' when no rule matched
            arm TEXT NOT NULL,
            requests INTEGER NOT NULL,
            cache_hits INTEGER NOT NULL,
            judge_cost_usd REAL NOT NULL,
            cost_usd REAL NOT NULL,
            baseline_cost_usd REAL NOT NULL,
            estimated_cost_usd REAL NOT NULL,
            estimated_baseline_cost_usd REAL NOT NULL,
            PRIMARY KEY (day, tier, model, source, status, rule, arm)
        );
        CREATE TRIGGER decisions_rollup_insert AFTER INSERT ON decisions BEGIN
            INSERT INTO decision_rollups VALUES (
                substr(NEW.created_at, 1, 10), NEW.tier, NEW.model, NEW.source, NEW.status,
                COALESCE(NEW.rule, ''), NEW.arm, 1, NEW.cached, NEW.judge_cost_usd,
                COALESCE(NEW.cost_usd, 0), COALESCE(NEW.baseline_cost_usd, 0),
                NEW.estimated_cost_usd, NEW.estimated_baseline_cost_usd
            ) ON CONFLICT (day, tier, model, source, status, rule, arm) DO UPDATE SET
                requests = requests + 1,
                cache_hits = cache_hits + excluded.cache_hits,
                judge_cost_usd = judge_cost_usd + excluded.judge_cost_usd,
                cost_usd = cost_usd + excluded.cost_usd,
                baseline_cost_usd = baseline_cost_usd + excluded.baseline_cost_usd,
                estimated_cost_usd = estimated_cost_usd + excluded.estimated_cost_usd,
                estimated_baseline_cost_usd =
                    estimated_baseline_cost_usd + excluded.estimated_baseline_cost_usd;
        END;
        CREATE TRIGGER decisions_rollup_delete AFTER DELETE ON decisions BEGIN
            UPDATE decision_rollups SET
                requests = requests - 1,
                cache_hits = cache_hits - OLD.cached,
                judge_cost_usd = judge_cost_usd - OLD.judge_cost_usd,
                cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0),
                baseline_cost_usd = baseline_cost_usd - COALESCE(OLD.baseline_cost_usd, 0),
                estimated_cost_usd = estimated_cost_usd - OLD.estimated_cost_usd,
                estimated_baseline_cost_usd =
                    estimated_baseline_cost_usd - OLD.estimated_baseline_cost_usd
            WHERE day = substr(OLD.created_at, 1, 10) AND tier = OLD.tier AND model = OLD.model
                AND source = OLD.source AND status = OLD.status
                AND rule = COALESCE(OLD.rule, '') AND arm = OLD.arm;
        END;
        INSERT INTO decision_rollups
            SELECT substr(created_at, 1, 10), tier, model, source, status, COALESCE(rule, ''), arm,
                COUNT(*), SUM(cached), SUM(judge_cost_usd), COALESCE(SUM(cost_usd), 0),
                COALESCE(SUM(baseline_cost_usd), 0), SUM(estimated_cost_usd),
                SUM(estimated_baseline_cost_usd)
            FROM decisions GROUP BY 1, 2, 3, 4, 5, 6, 7
        """,
    ),
    (
        "006_quality",
        # How each request was answered (a cascade's steps) and the outcomes table: a score per
        # answer, from a cascade's checks, a shadow test, a sampled grade or the client's
        # feedback. Grading and shadow answers are paid for here, so /stats adds them up from it.
        """
        -- direct | cascade
        ALTER TABLE decisions ADD COLUMN strategy TEXT NOT NULL DEFAULT 'direct';
        -- JSON [{model, tier, passed, failed_check, cost_usd}], a cascade's steps in order
        ALTER TABLE decisions ADD COLUMN cascade TEXT;
        -- what grading the cascade's answers cost (also in the outcomes' grader_cost_usd)
        ALTER TABLE decisions ADD COLUMN grader_cost_usd REAL NOT NULL DEFAULT 0;
        -- cascade_exhausted: every tier failed its checks, the last answer was sent
        ALTER TABLE decisions ADD COLUMN quality_flag TEXT;
        CREATE TABLE outcomes (
            request_id TEXT NOT NULL,
            source TEXT NOT NULL,       -- cascade | shadow | sample | feedback
            model TEXT NOT NULL,        -- the model whose answer was scored
            tier TEXT NOT NULL,
            score REAL,                 -- 0..1; NULL when none could be had (see error)
            grade INTEGER,              -- the grader's 1..10
            passed INTEGER,             -- a cascade step: its checks passed
            failed_check TEXT,
            reason TEXT,                -- the grader's sentence, or the feedback's comment
            grader_model TEXT,
            grader_prompt TEXT,         -- name@digest
            grader_cost_usd REAL NOT NULL DEFAULT 0,
            answer_cost_usd REAL NOT NULL DEFAULT 0,  -- a shadow candidate's answer
            error TEXT,
            api_key_id TEXT,            -- feedback: the key that gave it
            created_at TEXT NOT NULL,
            PRIMARY KEY (request_id, source, model)
        );
        CREATE INDEX outcomes_created_at ON outcomes(created_at)
        """,
    ),
    (
        "007_learning",
        # judge.learn: each request's feature vector (hashed n-grams of what the judge saw, never
        # its text), so `train --from-ledger` can learn from its verdict and its outcomes.
        """
        -- FEATURIZER:base64 uint32 indices:base64 float32 values (routing/judges/features.py)
        ALTER TABLE decisions ADD COLUMN features TEXT
        """,
    ),
    # The dashboard's hourly, group and cost rollups, added up in the background (its SQL and why
    # not by triggers: dashboard_schema.py).
    ("008_dashboard_rollups", DASHBOARD_ROLLUPS),
    ("009_dashboard_outcome_rollups", DASHBOARD_OUTCOME_ROLLUPS),
]


# The dashboard's rollups and their triggers: a SQLite ledger's only (the dashboard reads SQLite; a
# PostgreSQL ledger's migrations are every other one, by the same names).
SQLITE_ONLY = ("008_dashboard_rollups", "009_dashboard_outcome_rollups")


def statements(sql: str) -> list[str]:
    """`sql` cut into whole statements (a trigger's body keeps its semicolons)."""
    found, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current)
            current = ""
    if current.strip():
        found.append(current)
    return [statement for statement in found if statement.strip().strip(";").strip()]


def connect(path: Path, busy_timeout_s: float = 10.0) -> sqlite3.Connection:
    """A connection in autocommit mode that waits up to `busy_timeout_s` for a lock (0: never)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), check_same_thread=False, timeout=busy_timeout_s, isolation_level=None
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed row survives the process dying; only power loss can cost the
    # last transactions, and it keeps a commit per request cheap.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA recursive_triggers=ON")  # REPLACE's delete runs the rollup trigger
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
            for statement in statements(sql):
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
