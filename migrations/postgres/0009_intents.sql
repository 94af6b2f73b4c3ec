-- Issue 20: a change to Servo (pausing a job, recreating one) cannot join the
-- bot's transaction. The bot records its intent first (status 'applying'),
-- then writes to Servo, then finishes the intent in the same transaction as
-- what the change means to the bot (the paused job recorded, the alert
-- following the recreated job) and its audit entry. A stop in between leaves
-- the intent 'applying', and the repair pass finishes it: it looks at Servo,
-- and completes the change, or records that Servo refused it ('refused'),
-- and says so in the alert's thread.
CREATE TABLE intents (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,          -- 'pause' | 'recreate'
    alert_id       TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    job_id         TEXT NOT NULL,          -- the job the change is made to
    actor          TEXT NOT NULL,          -- who asked for it
    status         TEXT NOT NULL,          -- 'applying' | 'done' | 'refused'
    outcome        TEXT,                   -- what happened (the new job, why refused)
    created_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT
);
CREATE INDEX intents_applying ON intents (created_at_ms) WHERE status = 'applying';
CREATE INDEX intents_alert ON intents (alert_id) WHERE status = 'applying';
