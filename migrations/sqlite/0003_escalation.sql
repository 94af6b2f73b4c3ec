-- One escalation per alert: which tier is being paged, in which round of
-- the path, and whether someone acknowledged. Each step is a timer; a step
-- acts only if the escalation is still at the tier, round and epoch it was
-- scheduled for, so a late or repeated timer never pages twice.
CREATE TABLE escalations (
    alert_id      TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    status        TEXT NOT NULL,          -- active | acknowledged | stopped
    tier          INTEGER NOT NULL,       -- index into escalation.tiers of the last page
    round         INTEGER NOT NULL,       -- 0, then 1.. for each repeat of the path
    epoch         INTEGER NOT NULL,       -- bumped when the path is (re)started
    reason        TEXT,
    started_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    bumped_at_ms  INTEGER,                -- last "severity rose quickly" move
    pd_triggered  INTEGER NOT NULL DEFAULT 0 -- a PagerDuty incident is open for the alert
);

-- Recent severities of open alerts: "risk rises quickly" compares against them.
CREATE TABLE severity_history (
    alert_id TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    severity REAL NOT NULL,
    PRIMARY KEY (alert_id, at_ms)
);
