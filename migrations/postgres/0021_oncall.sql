-- Issue 36: on-call overrides set with `/backfill oncall override`.
-- migrations/sqlite/0021_oncall.sql has the same; keep the two in step.
--
-- An override puts `user_id` on call for `rotation_id` from `starts_at_ms`
-- until `ends_at_ms`, winning over the rotation's shift (the latest made
-- wins over an earlier one for the same time). `cancelled_at_ms` is set
-- once, by `/backfill oncall cancel`. `dedup_key` makes a retried
-- request create one override.
CREATE TABLE oncall_overrides (
    id              TEXT PRIMARY KEY,
    rotation_id     TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    reason          TEXT,
    created_by      TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    starts_at_ms    BIGINT NOT NULL,
    ends_at_ms      BIGINT NOT NULL,
    cancelled_at_ms BIGINT,
    cancelled_by    TEXT,
    dedup_key       TEXT UNIQUE
);
CREATE INDEX oncall_overrides_active ON oncall_overrides (rotation_id, ends_at_ms) WHERE cancelled_at_ms IS NULL;
