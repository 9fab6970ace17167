"""Migration 008: the rollups the dashboard reads, and what keeps them exact between catch-ups.

The dashboard's rollups are not kept by per-row triggers (measured: +50-90 µs of CPU per ledger
write, on the event loop, for the metadata parsing and the ten upserts), but added up in batches
by dashboard_rollups.catch_up, in the background: ~2 µs per row. Until a row is rolled up, readers
add it from the decisions themselves (dashboard_facts). Two cheap triggers keep that exact:

- a row inserted at or below the rolled-up rowid (SQLite reuses the largest rowid once its row is
  deleted, as a stream's final row replacing its first does) is listed in dashboard_late_rows;
- a rolled-up row that is deleted is copied to dashboard_retracted, to be subtracted.
Both triggers compare one rowid with a one-row table: the common case costs no write at all.

The tables: hourly rollups (the daily rollups' keys per UTC hour); group rollups (per day and
dimension of a row, its api_key and each top-level metadata key); the cost histogram (proxied
requests per day, dimension, model and realised cost to one significant digit).
"""

from __future__ import annotations

# The columns of a decision that the rollups read (what a retracted row keeps).
CHANGE_COLUMNS = (
    "created_at, tier, model, source, status, rule, arm, cached, judge_cost_usd, cost_usd, "
    "baseline_cost_usd, estimated_cost_usd, estimated_baseline_cost_usd, api_key_id, metadata"
)
_OLD_COLUMNS = ", ".join(f"OLD.{name.strip()}" for name in CHANGE_COLUMNS.split(","))

# A metadata object that parses, else an empty one (Python's json writes NaN, which SQLite's
# parser refuses); its top-level keys a `metadata.KEY` question can name, each value as text as
# stats_view reads it: a string as sent, a number as written, true or false; JSON null is none.
_OBJECT = """CASE WHEN NOT json_valid(c.metadata) THEN '{}'
    WHEN json_type(c.metadata) = 'object' THEN c.metadata ELSE '{}' END"""


def row_dimensions(table: str) -> str:
    """A SELECT of (rowid, dim, value) for each dimension of each row of `table` (which has
    api_key_id and metadata columns): its api_key and each top-level metadata key."""
    return f"""SELECT rowid, 'api_key', api_key_id FROM {table} WHERE api_key_id IS NOT NULL
    UNION ALL SELECT c.rowid, 'metadata.' || j.key,
        CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
            ELSE CAST(j.value AS TEXT) END AS value
    FROM {table} AS c, json_each({_OBJECT}) AS j
    WHERE j.type <> 'null' AND length(j.key) BETWEEN 1 AND 64
        AND j.key NOT GLOB '*[^A-Za-z0-9_-]*'"""


_SUMS = """requests INTEGER NOT NULL, cache_hits INTEGER NOT NULL, judge_cost_usd REAL NOT NULL,
    cost_usd REAL NOT NULL, baseline_cost_usd REAL NOT NULL, estimated_cost_usd REAL NOT NULL,
    estimated_baseline_cost_usd REAL NOT NULL"""
_KEY_COLUMNS = """tier TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL,
    status TEXT NOT NULL, rule TEXT NOT NULL, arm TEXT NOT NULL"""
_KEYS = "tier, model, source, status, rule, arm"
_ROLLED_UP = "(SELECT rolled_up_to FROM dashboard_rollup_state)"

DASHBOARD_ROLLUPS = f"""
-- the largest decisions rowid the rollups below hold
CREATE TABLE dashboard_rollup_state (rolled_up_to INTEGER NOT NULL);
INSERT INTO dashboard_rollup_state VALUES (0);
CREATE TABLE dashboard_late_rows (rid INTEGER PRIMARY KEY);
CREATE TABLE dashboard_retracted (
    created_at TEXT NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL,
    status TEXT NOT NULL, rule TEXT, arm TEXT NOT NULL, cached INTEGER NOT NULL,
    judge_cost_usd REAL NOT NULL, cost_usd REAL, baseline_cost_usd REAL,
    estimated_cost_usd REAL NOT NULL, estimated_baseline_cost_usd REAL NOT NULL,
    api_key_id TEXT, metadata TEXT
);
CREATE TRIGGER decisions_dashboard_late AFTER INSERT ON decisions
WHEN NEW.rowid <= {_ROLLED_UP} BEGIN
    INSERT OR IGNORE INTO dashboard_late_rows VALUES (NEW.rowid);
END;
CREATE TRIGGER decisions_dashboard_retract AFTER DELETE ON decisions
WHEN OLD.rowid <= {_ROLLED_UP} BEGIN
    -- a late row not rolled up yet is only forgotten
    INSERT INTO dashboard_retracted SELECT {_OLD_COLUMNS}
    WHERE NOT EXISTS (SELECT 1 FROM dashboard_late_rows WHERE rid = OLD.rowid);
    DELETE FROM dashboard_late_rows WHERE rid = OLD.rowid;
END;
CREATE TABLE decision_hourly_rollups (
    hour TEXT NOT NULL,  -- YYYY-MM-DDTHH, UTC
    {_KEY_COLUMNS}, {_SUMS},
    PRIMARY KEY (hour, {_KEYS})
);
CREATE TABLE decision_group_rollups (
    dim TEXT NOT NULL,    -- api_key | metadata.KEY
    day TEXT NOT NULL,
    value TEXT NOT NULL,  -- the key's id, or the metadata value as text
    {_KEY_COLUMNS}, {_SUMS},
    -- in this order, a group's figures by model are read in index order, without a sort
    PRIMARY KEY (dim, value, model, source, status, day, tier, rule, arm)
);
CREATE TABLE decision_cost_histogram (
    dim TEXT NOT NULL,     -- '' (every request) | tier | arm | rule | api_key | metadata.KEY
    day TEXT NOT NULL,
    value TEXT NOT NULL,
    model TEXT NOT NULL,
    bucket TEXT NOT NULL,  -- the realised cost to one significant digit ('3e-05'); '0': none
    requests INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    PRIMARY KEY (dim, value, model, bucket, day)
)
"""
