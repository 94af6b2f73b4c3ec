-- Issue 35: silences and maintenance windows set from Slack.
-- migrations/postgres/0020_quiet.sql has the same; keep the two in step.
--
-- A silence quiets the pages of one job, one asset (its later jobs too, by
-- the asset's name) or a whole tenant until `ends_at_ms`; `ended_at_ms` is
-- set once, by `/backfill unsilence` or by its expiry timer, whichever
-- comes first (a conditional update: the end is announced once).
-- `through_breach` = 1: a breach does not break through it.
-- `dedup_key` makes a retried request create one silence.
CREATE TABLE silences (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    scope          TEXT NOT NULL,
    target         TEXT NOT NULL,
    reason         TEXT,
    created_by     TEXT NOT NULL,
    through_breach INTEGER NOT NULL DEFAULT 0,
    starts_at_ms   INTEGER NOT NULL,
    ends_at_ms     INTEGER NOT NULL,
    ended_at_ms    INTEGER,
    ended_by       TEXT,
    dedup_key      TEXT UNIQUE
);
CREATE INDEX silences_active ON silences (tenant_id, ends_at_ms) WHERE ended_at_ms IS NULL;

-- A maintenance window set with `/backfill maintenance` (those in the config
-- file are not stored). `scope` is `tenant` or `asset`; `cancelled_at_ms`
-- is set once by `/backfill maintenance cancel`.
CREATE TABLE maintenance_windows (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    scope           TEXT NOT NULL,
    target          TEXT NOT NULL,
    reason          TEXT,
    created_by      TEXT NOT NULL,
    starts_at_ms    INTEGER NOT NULL,
    ends_at_ms      INTEGER NOT NULL,
    cancelled_at_ms INTEGER,
    cancelled_by    TEXT,
    dedup_key       TEXT UNIQUE
);
