-- Jobs the bot paused as a mitigation for an alert, so that once the at-risk
-- job has recovered it can offer to resume exactly those, and each only once.
CREATE TABLE paused_jobs (
    alert_id      TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    paused_by     TEXT NOT NULL,          -- the operator who confirmed the pause
    paused_at_ms  INTEGER NOT NULL,
    resumed_at_ms INTEGER,                -- set once resumed (a second click finds it set)
    PRIMARY KEY (alert_id, job_id)
);
