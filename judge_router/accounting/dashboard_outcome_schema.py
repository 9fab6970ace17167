"""Migration 009: the outcomes rolled up for the dashboard, as the decisions are (dashboard_schema).

Reading the quality figures meant joining every outcome to its decision (1.4 s for 160,000
outcomes). The roll-up adds each outcome, with the columns of its decision that the views filter
and group by, to a daily table per dimension ('' for every outcome, api_key, each top-level
metadata key), in the same background batches as the decisions (dashboard_outcome_rollups.py).

What keeps it exact between batches, as for the decisions:
- an outcome is rolled up with its decision's columns, so one without a decision yet (or whose
  decision is deleted or replaced, as a stream's final row replaces its first) is "late": it
  counts for nothing in the rollups and readers join it themselves until a batch adds it;
- an outcome inserted at or below the rolled-up rowid (a reused rowid) is late too;
- a rolled-up outcome that is deleted (INSERT OR REPLACE of a second grade or feedback), or whose
  decision is, is copied with the decision's columns to dashboard_outcomes_retracted, to be
  subtracted.
The triggers compare one rowid with a one-row table, and a decision's delete probes the outcomes'
primary key: the common case writes nothing.
"""

from __future__ import annotations

# An outcome as the rollups and readers see it: its own columns, then its decision's.
OUTCOME_COLUMNS = (
    "o_source, o_tier, o_model, score, grade, passed, error, spend, o_created_at, "
    "tier, model, source, rule, arm, created_at, api_key_id, metadata"
)
# Those columns read from outcomes AS o and decisions AS d.
OUTCOME_SELECT = """o.source AS o_source, o.tier AS o_tier, o.model AS o_model, o.score,
    o.grade, o.passed, o.error, o.grader_cost_usd + o.answer_cost_usd AS spend,
    o.created_at AS o_created_at, d.tier, d.model, d.source, d.rule, d.arm, d.created_at,
    d.api_key_id, d.metadata"""
OUTCOMES_ROLLED_UP = "(SELECT rolled_up_to FROM dashboard_outcome_state)"
_W = OUTCOMES_ROLLED_UP

DASHBOARD_OUTCOME_ROLLUPS = f"""
-- the largest outcomes rowid the rollups hold
CREATE TABLE dashboard_outcome_state (rolled_up_to INTEGER NOT NULL);
INSERT INTO dashboard_outcome_state VALUES (0);
CREATE TABLE dashboard_outcomes_late (rid INTEGER PRIMARY KEY);
CREATE TABLE dashboard_outcomes_retracted (
    o_source TEXT NOT NULL, o_tier TEXT NOT NULL, o_model TEXT NOT NULL, score REAL,
    grade INTEGER, passed INTEGER, error TEXT, spend REAL NOT NULL, o_created_at TEXT NOT NULL,
    tier TEXT, model TEXT, source TEXT, rule TEXT, arm TEXT, created_at TEXT, api_key_id TEXT,
    metadata TEXT
);
CREATE TRIGGER outcomes_dashboard_late AFTER INSERT ON outcomes
WHEN NEW.rowid <= {_W} BEGIN
    INSERT OR IGNORE INTO dashboard_outcomes_late VALUES (NEW.rowid);
END;
CREATE TRIGGER outcomes_dashboard_retract AFTER DELETE ON outcomes
WHEN OLD.rowid <= {_W} BEGIN
    -- a late outcome counts for nothing yet: it is only forgotten
    INSERT INTO dashboard_outcomes_retracted
    SELECT OLD.source, OLD.tier, OLD.model, OLD.score, OLD.grade, OLD.passed, OLD.error,
        OLD.grader_cost_usd + OLD.answer_cost_usd, OLD.created_at, d.tier, d.model, d.source,
        d.rule, d.arm, d.created_at, d.api_key_id, d.metadata
    FROM decisions AS d
    WHERE d.request_id = OLD.request_id
        AND NOT EXISTS (SELECT 1 FROM dashboard_outcomes_late WHERE rid = OLD.rowid);
    DELETE FROM dashboard_outcomes_late WHERE rid = OLD.rowid;
END;
CREATE TRIGGER decisions_dashboard_outcomes AFTER DELETE ON decisions
WHEN EXISTS (SELECT 1 FROM outcomes WHERE request_id = OLD.request_id AND rowid <= {_W}) BEGIN
    INSERT INTO dashboard_outcomes_retracted
    SELECT o.source, o.tier, o.model, o.score, o.grade, o.passed, o.error,
        o.grader_cost_usd + o.answer_cost_usd, o.created_at, OLD.tier, OLD.model, OLD.source,
        OLD.rule, OLD.arm, OLD.created_at, OLD.api_key_id, OLD.metadata
    FROM outcomes AS o
    WHERE o.request_id = OLD.request_id AND o.rowid <= {_W}
        AND NOT EXISTS (SELECT 1 FROM dashboard_outcomes_late WHERE rid = o.rowid);
    -- added again, with the decision that replaces it (if one does), by the next batch
    INSERT OR IGNORE INTO dashboard_outcomes_late
    SELECT rowid FROM outcomes WHERE request_id = OLD.request_id AND rowid <= {_W};
END;
CREATE TABLE outcome_rollups (
    dim TEXT NOT NULL,      -- '' (every outcome) | api_key | metadata.KEY, of the decision
    value TEXT NOT NULL,
    o_day TEXT NOT NULL,    -- the outcome's day (when its cost was spent), UTC
    o_source TEXT NOT NULL, o_tier TEXT NOT NULL, o_model TEXT NOT NULL,
    tier TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL, rule TEXT NOT NULL,
    arm TEXT NOT NULL,
    day TEXT NOT NULL,      -- the decision's day
    outcomes INTEGER NOT NULL, scored INTEGER NOT NULL, score_sum REAL NOT NULL,
    graded INTEGER NOT NULL, grade_sum INTEGER NOT NULL, checked INTEGER NOT NULL,
    passed INTEGER NOT NULL, errors INTEGER NOT NULL, spend REAL NOT NULL,
    PRIMARY KEY (dim, value, o_day, o_source, o_tier, o_model, tier, model, source, rule, arm,
        day)
)
"""
