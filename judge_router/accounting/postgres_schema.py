"""The ledger's schema in PostgreSQL: migrations.py's named migrations, one for one, in its dialect.

Columns keep SQLite's shapes so the read queries are shared (read_connection.py): timestamps are
ISO 8601 text (compared as text, as SQLite does), flags are integers, JSON is text. Text columns
use the "C" collation, so groups sort as SQLite's binary collation does. The rollup triggers
run on INSERT, UPDATE (an upsert replacing a stream's first row) and DELETE. jr_json_* give
SQLite's json_valid, json_type and json_extract on text (postgres_reads.py renames the calls);
two differences: jsonb refuses \u0000 and lone surrogates, so metadata holding them is unreadable
here (out of every metadata filter and group, as NaN is on both), where SQLite reads it; and a
metadata value that is itself an object or array reads as jsonb writes it (`{"k": "v"}`, keys in
jsonb's order), where SQLite gives its own text minified (`{"k":"v"}`).

Replicas starting together: `migrate` holds a transaction-scoped advisory lock, so one applies
what is missing and the others then find it applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

ADVISORY_LOCK = 0x6A72_6C65_6467_6572  # "jrledger": the key every replica's migrate locks

_ROLLUP_SUMS = """
    requests = decision_rollups.requests + 1,
    cache_hits = decision_rollups.cache_hits + excluded.cache_hits,
    judge_cost_usd = decision_rollups.judge_cost_usd + excluded.judge_cost_usd,
    cost_usd = decision_rollups.cost_usd + excluded.cost_usd,
    baseline_cost_usd = decision_rollups.baseline_cost_usd + excluded.baseline_cost_usd,
    estimated_cost_usd = decision_rollups.estimated_cost_usd + excluded.estimated_cost_usd,
    estimated_baseline_cost_usd =
        decision_rollups.estimated_baseline_cost_usd + excluded.estimated_baseline_cost_usd
"""
_ROLLUP_SUBTRACT = """
    requests = requests - 1,
    cache_hits = cache_hits - OLD.cached,
    judge_cost_usd = judge_cost_usd - OLD.judge_cost_usd,
    cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0),
    baseline_cost_usd = baseline_cost_usd - COALESCE(OLD.baseline_cost_usd, 0),
    estimated_cost_usd = estimated_cost_usd - OLD.estimated_cost_usd,
    estimated_baseline_cost_usd = estimated_baseline_cost_usd - OLD.estimated_baseline_cost_usd
"""
_ROLLUP_MONEY = """
    requests INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    judge_cost_usd DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    baseline_cost_usd DOUBLE PRECISION NOT NULL,
    estimated_cost_usd DOUBLE PRECISION NOT NULL,
    estimated_baseline_cost_usd DOUBLE PRECISION NOT NULL
"""
_MONEY_VALUES = """
    1, NEW.cached, NEW.judge_cost_usd, COALESCE(NEW.cost_usd, 0),
    COALESCE(NEW.baseline_cost_usd, 0), NEW.estimated_cost_usd, NEW.estimated_baseline_cost_usd
"""
_MONEY_SUMS = """
    COUNT(*), SUM(cached), SUM(judge_cost_usd), COALESCE(SUM(cost_usd), 0),
    COALESCE(SUM(baseline_cost_usd), 0), SUM(estimated_cost_usd), SUM(estimated_baseline_cost_usd)
"""


def _rollups(keys: list[str], values: list[str], olds: list[str]) -> str:
    """The rollup table keyed by `keys`, its trigger function and trigger, and its first rows."""
    columns = ", ".join(keys)
    matches = " AND ".join(f"{key} = {old}" for key, old in zip(keys, olds, strict=True))
    return f"""
        CREATE TABLE decision_rollups (
            {", ".join(f'{key} TEXT COLLATE "C" NOT NULL' for key in keys)}, {_ROLLUP_MONEY},
            PRIMARY KEY ({columns})
        );
        CREATE OR REPLACE FUNCTION jr_decisions_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                UPDATE decision_rollups SET {_ROLLUP_SUBTRACT} WHERE {matches};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO decision_rollups VALUES ({", ".join(values)}, {_MONEY_VALUES})
                ON CONFLICT ({columns}) DO UPDATE SET {_ROLLUP_SUMS};
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER decisions_rollup AFTER INSERT OR UPDATE OR DELETE ON decisions
            FOR EACH ROW EXECUTE FUNCTION jr_decisions_rollup();
        INSERT INTO decision_rollups
            SELECT {", ".join(k.replace("NEW.", "") for k in values)}, {_MONEY_SUMS}
            FROM decisions GROUP BY {", ".join(str(i + 1) for i in range(len(keys)))}
    """


# SQLite's json_valid, json_type and json_extract. A document is cast to jsonb directly unless it
# may hold what jsonb refuses and SQLite need not (NaN and Infinity, which Python's json writes;
# \u0000 and lone surrogates, among the \u escapes): only those go through jr_json_checked, whose
# exception block (a subtransaction per call) is slow and keeps queries off parallel workers (its
# labels say so). jr_json_type and jr_json_extract are single expressions that PostgreSQL inlines,
# so a constant path is read once per query, not per row; jr_json_kind and jr_json_text (plpgsql:
# a cheaper call than a SQL function that is not inlined) look at the value found once.
_JSON_FUNCTIONS = r"""
    CREATE OR REPLACE FUNCTION jr_json_checked(doc text) RETURNS jsonb
        LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
        RETURN doc::jsonb;
    EXCEPTION WHEN others THEN
        RETURN NULL;
    END $$;
    CREATE OR REPLACE FUNCTION jr_json(doc text) RETURNS jsonb
        LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN strpos(doc, 'NaN') > 0 OR strpos(doc, 'Infinity') > 0
            OR strpos(doc, '\u') > 0 THEN jr_json_checked(doc) ELSE doc::jsonb END
    $$;
    CREATE OR REPLACE FUNCTION jr_json_path(path text) RETURNS text[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT COALESCE(array_agg(part[1] ORDER BY n), '{}')
        FROM regexp_matches(path, '\."([^"]*)"', 'g') WITH ORDINALITY AS found(part, n)
    $$;
    CREATE OR REPLACE FUNCTION jr_json_kind(v jsonb) RETURNS text
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
        RETURN CASE jsonb_typeof(v)
            WHEN 'string' THEN 'text'
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 'true' ELSE 'false' END
            WHEN 'number' THEN CASE WHEN v::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END
            ELSE jsonb_typeof(v) END;
    END $$;
    CREATE OR REPLACE FUNCTION jr_json_text(v jsonb) RETURNS text
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    BEGIN
        RETURN CASE jsonb_typeof(v)
            WHEN 'string' THEN v #>> '{}'
            WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
            WHEN 'null' THEN NULL
            ELSE v::text END;
    END $$;
    CREATE OR REPLACE FUNCTION jr_json_valid(doc text) RETURNS boolean
        LANGUAGE sql IMMUTABLE AS $$ SELECT jr_json(doc) IS NOT NULL $$;
    CREATE OR REPLACE FUNCTION jr_json_type(doc text, path text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT jr_json_kind(jr_json(doc) #> jr_json_path(path)) $$;
    CREATE OR REPLACE FUNCTION jr_json_extract(doc text, path text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT jr_json_text(jr_json(doc) #> jr_json_path(path)) $$
"""

_C = 'TEXT COLLATE "C"'
_REAL = "DOUBLE PRECISION"

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_decisions",
        f"""
        CREATE TABLE decisions (
            request_id {_C} PRIMARY KEY,
            created_at {_C} NOT NULL,
            endpoint {_C} NOT NULL,
            prompt_hash {_C} NOT NULL,
            tier {_C} NOT NULL,
            model {_C} NOT NULL,
            source {_C} NOT NULL,
            cached INTEGER NOT NULL,
            reason {_C} NOT NULL,
            judge_model {_C} NOT NULL,
            judge_error {_C},
            judge_cost_usd {_REAL} NOT NULL,
            judge_latency_ms {_REAL} NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            estimated_cost_usd {_REAL} NOT NULL,
            baseline_model {_C} NOT NULL,
            estimated_baseline_cost_usd {_REAL} NOT NULL,
            latency_ms {_REAL} NOT NULL,
            metadata {_C}
        );
        CREATE INDEX decisions_created_at ON decisions (created_at);
        {_JSON_FUNCTIONS}
        """,
    ),
    (
        "002_completions",
        f"""
        ALTER TABLE decisions
            ADD COLUMN status {_C} NOT NULL DEFAULT 'routed',
            ADD COLUMN routed_model {_C},
            ADD COLUMN stream INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN completion_tokens BIGINT,
            ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0,
            ADD COLUMN cost_usd {_REAL},
            ADD COLUMN baseline_cost_usd {_REAL},
            ADD COLUMN saved_usd {_REAL},
            ADD COLUMN upstream_latency_ms {_REAL},
            ADD COLUMN attempts {_C},
            ADD COLUMN error {_C}
        """,
    ),
    (
        "003_callers_and_prompts",
        f"ALTER TABLE decisions ADD COLUMN api_key_id {_C}, ADD COLUMN prompt_text {_C}",
    ),
    (
        "004_daily_rollups",
        _rollups(
            ["day", "tier", "model", "source", "status"],
            ["substr(NEW.created_at, 1, 10)", "NEW.tier", "NEW.model", "NEW.source", "NEW.status"],
            ["substr(OLD.created_at, 1, 10)", "OLD.tier", "OLD.model", "OLD.source", "OLD.status"],
        ),
    ),
    (
        "005_policy",
        f"""
        ALTER TABLE decisions ADD COLUMN rule {_C},
            ADD COLUMN arm {_C} NOT NULL DEFAULT 'routed', ADD COLUMN budget {_C};
        DROP TRIGGER decisions_rollup ON decisions;
        DROP TABLE decision_rollups;
        """
        + _rollups(
            ["day", "tier", "model", "source", "status", "rule", "arm"],
            [
                "substr(NEW.created_at, 1, 10)",
                "NEW.tier",
                "NEW.model",
                "NEW.source",
                "NEW.status",
                "COALESCE(NEW.rule, '')",
                "NEW.arm",
            ],
            [
                "substr(OLD.created_at, 1, 10)",
                "OLD.tier",
                "OLD.model",
                "OLD.source",
                "OLD.status",
                "COALESCE(OLD.rule, '')",
                "OLD.arm",
            ],
        ),  # fmt: skip
    ),
    (
        "006_quality",
        f"""
        ALTER TABLE decisions ADD COLUMN strategy {_C} NOT NULL DEFAULT 'direct',
            ADD COLUMN cascade {_C}, ADD COLUMN grader_cost_usd {_REAL} NOT NULL DEFAULT 0,
            ADD COLUMN quality_flag {_C};
        CREATE TABLE outcomes (
            request_id {_C} NOT NULL,
            source {_C} NOT NULL,
            model {_C} NOT NULL,
            tier {_C} NOT NULL,
            score {_REAL},
            grade INTEGER,
            passed INTEGER,
            failed_check {_C},
            reason {_C},
            grader_model {_C},
            grader_prompt {_C},
            grader_cost_usd {_REAL} NOT NULL DEFAULT 0,
            answer_cost_usd {_REAL} NOT NULL DEFAULT 0,
            error {_C},
            api_key_id {_C},
            created_at {_C} NOT NULL,
            PRIMARY KEY (request_id, source, model)
        );
        CREATE INDEX outcomes_created_at ON outcomes (created_at)
        """,
    ),
    ("007_learning", f"ALTER TABLE decisions ADD COLUMN features {_C}"),
]


def _applied(conn: psycopg.Connection[Any]) -> set[str]:
    found = conn.execute("SELECT to_regclass('_migrations') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return set()
    return {str(row[0]) for row in conn.execute("SELECT name FROM _migrations")}


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations this database has not seen (in one transaction, under the advisory
    lock); returns their names. `conn` is in autocommit mode."""
    if {name for name, _ in MIGRATIONS} <= _applied(conn):
        return []  # the usual case: no lock taken
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = _applied(conn)  # again, under the lock: another replica may have applied them
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            conn.execute(sql.encode())  # no parameters: several statements in one call
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (%s, %s)",
                (name, datetime.now(UTC).isoformat()),
            )
            applied.append(name)
    return applied
