-- Issue 12: early warning, the deadline buffer check and the weekly SLA
-- review. migrations/sqlite/0006_review.sql has the same tables in
-- SQLite's types; keep the two in step.

-- Every job with a deadline the poller has seen, from first sight until it
-- leaves the active list. The first insert wins: the buffer check runs once.
CREATE TABLE watched_jobs (
    tenant_id        TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    asset            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    tier             TEXT NOT NULL CHECK (tier IN ('critical', 'standard', 'best_effort', 'below_best_effort')),
    first_seen_ms BIGINT NOT NULL,
    deadline_ms BIGINT,                -- the deadline last seen
    planned_buffer   DOUBLE PRECISION,                   -- (deadline - expected completion) / expected duration at first sight
    min_buffer       DOUBLE PRECISION,                   -- the lowest buffer seen while active (negative: ETA past the deadline)
    min_buffer_at_ms BIGINT,
    last_mark        BIGINT NOT NULL DEFAULT 0, -- the last ETA-accuracy mark recorded (0, 25, 50, 75)
    breached_at_ms BIGINT,                -- first seen active past its deadline
    ended_at_ms BIGINT,                -- left the active list (NULL: still watched)
    outcome          TEXT CHECK (outcome IN ('completed', 'cancelled', 'failed', 'no_sla', 'gone')),
    completed_at_ms BIGINT,                -- Servo's completion time, when it completed
    PRIMARY KEY (tenant_id, job_id)
);
-- The poller reads a tenant's watched jobs that are still active.
CREATE INDEX watched_jobs_active ON watched_jobs (tenant_id, ended_at_ms);
-- The review reads a tenant's jobs by when they were seen; pruning by age.
CREATE INDEX watched_jobs_seen ON watched_jobs (tenant_id, first_seen_ms);

-- Quiet notices: "approaching" (the ETA came within the tier's buffer of the
-- deadline) and "tight_deadline" (the buffer check at first sight). An open
-- notice that goes at risk becomes the alert: its message is edited into it.
CREATE TABLE notices (
    id            TEXT PRIMARY KEY,         -- uuid; its post's outbox dedup key is notice:<id>:post
    tenant_id     TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('approaching', 'tight_deadline')),
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'cleared', 'promoted')),
    buffer        DOUBLE PRECISION,                     -- the buffer when it was opened
    alert_id      TEXT,                     -- the alert it became (promoted)
    thread_of     TEXT,                     -- a reply in this (resolved) alert's thread, not a message of its own
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    CHECK ((status = 'open') = (closed_at_ms IS NULL))
);
CREATE UNIQUE INDEX notices_one_open_per_job ON notices (tenant_id, job_id) WHERE status = 'open';
CREATE INDEX notices_opened ON notices (opened_at_ms);

-- Servo's ETA and the bot's, as they stood when a job was 25, 50 and 75%
-- done: the review's accuracy compares them with the real completion.
CREATE TABLE eta_marks (
    tenant_id    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    mark         BIGINT NOT NULL CHECK (mark IN (25, 50, 75)),
    made_at_ms BIGINT NOT NULL,
    servo_eta_ms BIGINT,
    bot_eta_ms BIGINT,
    PRIMARY KEY (tenant_id, job_id, mark)
);
CREATE INDEX eta_marks_made ON eta_marks (made_at_ms);

-- The ETA of jobs with an open alert, at most one sample per five minutes:
-- what a mitigation bought is how the ETA moved after it.
CREATE TABLE eta_samples (
    tenant_id   TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    bucket BIGINT NOT NULL,           -- at_ms / 300000
    at_ms BIGINT NOT NULL,
    eta_ms BIGINT NOT NULL,
    deadline_ms BIGINT,
    PRIMARY KEY (tenant_id, job_id, bucket)
);
CREATE INDEX eta_samples_at ON eta_samples (at_ms);

-- Weekly reviews posted: one per tenant and week, whichever replica polls.
CREATE TABLE reviews (
    tenant_id    TEXT NOT NULL,
    period       TEXT NOT NULL,             -- the week's scheduled time, RFC 3339
    posted_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);

-- The review reads these by tenant and time; pruning deletes by age.
CREATE INDEX alerts_opened ON alerts (tenant_id, opened_at_ms);
CREATE INDEX alerts_resolved ON alerts (resolved_at_ms) WHERE status = 'resolved';
CREATE INDEX approvals_created ON approvals (tenant_id, created_at_ms);
CREATE INDEX audit_tenant_at ON audit_log (tenant_id, at_ms);
CREATE INDEX outbox_created ON outbox (created_at_ms);
CREATE INDEX timers_created ON timers (created_at_ms);
