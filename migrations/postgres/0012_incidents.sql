-- Issue 22: trouble wider than one job. An incident is one episode of a
-- widespread slowdown in a tenant (scope = the tenant, kind =
-- 'widespread:<cause>') or of system-wide degradation (scope = '*', kind =
-- 'system'). One open incident per scope and kind: it pages once when it
-- opens, with the page committed in the same transaction, and closes when
-- the condition clears.
CREATE TABLE incidents (
    id             TEXT PRIMARY KEY,
    scope          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    detail         TEXT,                  -- what it was opened for (JSON): the cause, the jobs
    opened_at_ms   BIGINT NOT NULL,
    closed_at_ms   BIGINT
);
CREATE UNIQUE INDEX incidents_open ON incidents (scope, kind) WHERE status = 'open';
