-- Issue 22: alert storms read as one incident. When more of a tenant's jobs
-- than `alerts.rollup_after` are at risk together, the channel gets one
-- roll-up message for the tenant, edited in place; each new alert is a reply
-- in its thread. One open roll-up per tenant; it resolves when the last of
-- its jobs does. Its message's place is its post's outbox answer
-- (dedup key `rollup:<id>:post`).
CREATE TABLE rollups (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    shown          TEXT,                  -- what the message shows (JSON); an edit only when it changes
    opened_at_ms   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    resolved_at_ms INTEGER
) STRICT;
CREATE UNIQUE INDEX rollups_open ON rollups (tenant_id) WHERE status = 'open';
