-- Issue 19: **Request scaling** is a real page to the platform tier, with a
-- cool-down. One row per alert: its latest scaling request, how many there
-- have been (the number names each request's DMs, PagerDuty incident and
-- Acknowledge button), and who acknowledged it. The upsert that records a
-- request only succeeds once the cool-down has passed, so a double click or
-- two replicas page once. migrations/postgres/0007_scaling.sql
-- has the same table; keep the two in step.
CREATE TABLE scaling_requests (
    alert_id        TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    count           INTEGER NOT NULL,
    acked_by        TEXT,
    acked_at_ms     INTEGER
);
