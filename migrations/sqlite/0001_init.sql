-- The bot's own state (SQLite, the embedded default).
-- Times are epoch milliseconds (INTEGER) on both engines, so they compare
-- identically: SQLite would keep chrono's nanoseconds, PostgreSQL microseconds.
-- The PostgreSQL migration has the same tables and meaning; keep them in step.

-- One row per job and risk episode: what Slack shows and where.
CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,          -- uuid, used in button values
    tenant_id      TEXT NOT NULL,             -- Servo's tenant_id
    job_id         TEXT NOT NULL,             -- Servo's backfill_jobs.id
    episode        INTEGER NOT NULL,          -- 1, 2, ... per job: a recovery ends an episode
    status         TEXT NOT NULL DEFAULT 'open',   -- open | resolved
    band           TEXT NOT NULL,             -- risk band last shown (hysteresis needs it)
    severity       REAL,
    eta_ms         INTEGER,
    deadline_ms    INTEGER,
    shown          TEXT,                      -- JSON of what the message shows; an edit only when it changes
    channel        TEXT,                      -- set once the post is delivered...
    ts             TEXT,                      -- ...with its ts: edits and thread replies need both
    acked_by       TEXT,
    acked_at_ms    INTEGER,
    opened_at_ms   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    resolved_at_ms INTEGER,
    resolution     TEXT,                      -- how it ended, as shown
    version        INTEGER NOT NULL DEFAULT 1, -- bumped on every change; names edits in the outbox
    UNIQUE (tenant_id, job_id, episode)
);
-- At most one open alert per job: concurrent polls (or replicas) cannot open two.
CREATE UNIQUE INDEX alerts_one_open_per_job ON alerts (tenant_id, job_id) WHERE status = 'open';
-- Button clicks and thread replies find the alert by its message.
CREATE INDEX alerts_by_message ON alerts (channel, ts);

-- Slack calls that must not be lost, delivered by the outbox worker.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT, -- delivery order
    dedup_key          TEXT UNIQUE,           -- the same logical message is enqueued once
    method             TEXT NOT NULL,         -- chat.postMessage, chat.update, ...
    payload            TEXT NOT NULL,         -- the JSON body
    ordering_key       TEXT,                  -- same key: strictly in id order (one thread)
    thread_alert_id    TEXT,                  -- fill payload[thread_field] from this alert's ts at delivery
    thread_field       TEXT,                  -- 'thread_ts' (a reply) or 'ts' (an edit)
    link_kind          TEXT,                  -- on success record channel/ts on: 'alert' | 'approval'
    link_id            TEXT,
    status             TEXT NOT NULL DEFAULT 'pending', -- pending | sent | failed
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    claimed_by         TEXT,                  -- the worker delivering it...
    claim_until_ms     INTEGER,               -- ...until then; an expired claim can be taken over
    last_error         TEXT,
    response           TEXT,                  -- Slack's answer (JSON)
    created_at_ms      INTEGER NOT NULL,
    sent_at_ms         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_ms);
CREATE INDEX outbox_ordering ON outbox (ordering_key, status, id);

-- Things that must happen at a time: escalation steps, check-ins, approval expiry.
CREATE TABLE timers (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    subject_id     TEXT NOT NULL,             -- the alert or approval it belongs to
    payload        TEXT NOT NULL,             -- JSON
    due_at_ms      INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending', -- pending | fired | cancelled
    dedup_key      TEXT UNIQUE,               -- a step is scheduled once
    claimed_by     TEXT,
    claim_until_ms INTEGER,
    created_at_ms  INTEGER NOT NULL,
    fired_at_ms    INTEGER
);
CREATE INDEX timers_due ON timers (status, due_at_ms);
CREATE INDEX timers_subject ON timers (subject_id, status);

-- Deadline-extension requests, decided once by a conditional update.
CREATE TABLE approvals (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    job_id               TEXT NOT NULL,
    alert_id             TEXT,                -- the alert whose thread holds the request
    requested_by         TEXT NOT NULL,
    reason               TEXT,
    current_deadline_ms  INTEGER NOT NULL,
    proposed_deadline_ms INTEGER NOT NULL,
    status               TEXT NOT NULL DEFAULT 'pending', -- pending | approved | rejected | expired | superseded | moot | failed
    decided_by           TEXT,
    decided_at_ms        INTEGER,
    decision_reason      TEXT,
    expires_at_ms        INTEGER NOT NULL,
    channel              TEXT,                -- the request message
    ts                   TEXT,
    created_at_ms        INTEGER NOT NULL
);
CREATE INDEX approvals_job ON approvals (tenant_id, job_id, status);

-- Who did what, when, with what outcome. Append-only.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    tenant_id TEXT,
    actor     TEXT NOT NULL,                  -- Slack user id, or 'bot'
    action    TEXT NOT NULL,
    subject   TEXT,                           -- usually the job id
    outcome   TEXT NOT NULL,
    detail    TEXT                            -- JSON
);
CREATE INDEX audit_subject ON audit_log (subject, at_ms);
CREATE INDEX audit_at ON audit_log (at_ms);

-- Slack retries events: each key is handled once.
CREATE TABLE processed_events (
    key   TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);

-- Singleton work (one poller among replicas) holds a lease that expires.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
