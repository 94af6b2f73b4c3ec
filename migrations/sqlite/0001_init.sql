-- The bot's own state, SQLite (the embedded default: one process).
-- migrations/postgres/0001_init.sql has the same tables, columns, constraints
-- and indexes, in PostgreSQL's types; keep the two in step.
--
-- Conventions, on both engines:
-- * Times are epoch milliseconds in integer columns named *_ms. SQLite would
--   keep chrono's nanoseconds as text and PostgreSQL microseconds; integers
--   compare and round-trip identically on both.
-- * JSON is stored as TEXT (payloads, what a message shows): the store only
--   writes and reads it whole, never queries inside it.
-- * Enum-like columns are TEXT with a CHECK listing the values, the same sets
--   the Rust side validates on decode.
-- * STRICT tables: SQLite refuses a value of the wrong type (e.g. a text time
--   bound by mistake) instead of storing it.

-- One Slack message per job and risk episode: what it shows and where it is.
CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,            -- uuid; goes into button values
    tenant_id      TEXT NOT NULL,               -- Servo's tenant
    job_id         TEXT NOT NULL,               -- Servo's backfill job
    episode        INTEGER NOT NULL CHECK (episode >= 1), -- 1, 2, ... per job: a recovery ends an episode, a relapse opens the next
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    band           TEXT NOT NULL,               -- risk band last assessed (hysteresis needs the previous one)
    severity       REAL,                        -- last severity score, if the engine had one
    eta_ms         INTEGER,                     -- projected completion, if known
    deadline_ms    INTEGER,                     -- the SLA deadline it was assessed against
    shown          TEXT,                        -- JSON of what Slack shows; the engine edits only when it changes
    channel        TEXT,                        -- set once the post is delivered...
    ts             TEXT,                        -- ...with its ts (first delivery wins); edits and thread replies need both
    acked_by       TEXT,                        -- Slack user who acknowledged; NULL = escalation still armed
    acked_at_ms    INTEGER,
    opened_at_ms   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    resolved_at_ms INTEGER,
    resolution     TEXT,                        -- how it ended, as shown in Slack
    version        INTEGER NOT NULL DEFAULT 1,  -- bumped on every change; names edits so the outbox dedups them
    UNIQUE (tenant_id, job_id, episode),        -- two callers computing the same next episode: one wins
    CHECK ((status = 'open') = (resolved_at_ms IS NULL)) -- resolved exactly when it has a resolution time
) STRICT;
-- At most one open alert per job: concurrent polls (or replicas) cannot open
-- two. open_alert relies on it (INSERT ... ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX alerts_one_open_per_job ON alerts (tenant_id, job_id) WHERE status = 'open';
-- Button clicks and thread replies find the alert by its message.
CREATE INDEX alerts_by_message ON alerts (channel, ts);
-- list_open_alerts scans only open alerts, oldest first.
CREATE INDEX alerts_open ON alerts (opened_at_ms) WHERE status = 'open';

-- Slack calls that must not be lost: written in the same flow as the state
-- change, delivered later (with retries) by the outbox worker. The row keeps
-- Slack's answer, so a restart neither loses nor repeats a message.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT, -- increasing, never reused: the delivery order
    dedup_key          TEXT UNIQUE,                 -- the same logical message is enqueued once (NULLs never conflict)
    method             TEXT NOT NULL,               -- chat.postMessage, chat.update, ...
    payload            TEXT NOT NULL,               -- the JSON body
    ordering_key       TEXT,                        -- same key: delivered strictly in id order (e.g. one alert's thread)
    thread_alert_id    TEXT,                        -- fill payload[thread_field] from this alert's ts at delivery time...
    thread_field       TEXT CHECK (thread_field IN ('thread_ts', 'ts')), -- ...'thread_ts' (a reply) or 'ts' (an edit)
    link_kind          TEXT CHECK (link_kind IN ('alert', 'approval')),  -- on success record the answer's channel/ts
    link_id            TEXT,                        -- on that alert or approval, in the same transaction
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,  -- claims so far; the worker's backoff and give-up use it
    next_attempt_at_ms INTEGER NOT NULL,            -- not before (enqueue time, or a retry's backoff)
    claimed_by         TEXT,                        -- the worker delivering it...
    claim_until_ms     INTEGER,                     -- ...until then; an expired claim (crashed worker) is taken over
    last_error         TEXT,                        -- why the last attempt failed, for operators
    response           TEXT,                        -- Slack's answer (JSON) once sent
    created_at_ms      INTEGER NOT NULL,
    sent_at_ms         INTEGER                      -- when it was sent or given up on
) STRICT;
-- The worker's claim: pending messages by due time.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_ms);
-- "No earlier pending message with the same ordering key" is an index probe.
CREATE INDEX outbox_ordering ON outbox (ordering_key, status, id) WHERE ordering_key IS NOT NULL;

-- Things that must happen at a time: escalation steps, monitor-closely
-- check-ins, approval expiry. Claimed with a lease, so a restart resumes and
-- each fires once.
CREATE TABLE timers (
    id             TEXT PRIMARY KEY,            -- uuid
    kind           TEXT NOT NULL,               -- what to do when due (the engine's vocabulary)
    subject_id     TEXT NOT NULL,               -- the alert or approval it belongs to (cancel_timers names it)
    payload        TEXT NOT NULL,               -- JSON the handler needs
    due_at_ms      INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fired', 'cancelled')),
    dedup_key      TEXT UNIQUE,                 -- a step is scheduled once, however often it is asked for
    claimed_by     TEXT,                        -- the worker handling it...
    claim_until_ms INTEGER,                     -- ...until then; expired claims are taken over
    created_at_ms  INTEGER NOT NULL,
    fired_at_ms    INTEGER                      -- when it fired or was cancelled
) STRICT;
-- The worker's claim: pending timers by due time.
CREATE INDEX timers_due ON timers (status, due_at_ms);
-- Cancelling and listing a subject's timers.
CREATE INDEX timers_subject ON timers (subject_id, status);

-- Deadline-extension requests, decided once by a conditional update.
CREATE TABLE approvals (
    id                   TEXT PRIMARY KEY,      -- uuid; goes into button values
    tenant_id            TEXT NOT NULL,
    job_id               TEXT NOT NULL,
    alert_id             TEXT REFERENCES alerts (id), -- the alert whose thread holds the request, if one was open
    requested_by         TEXT NOT NULL,         -- Slack user id
    reason               TEXT,                  -- the requester's words
    current_deadline_ms  INTEGER NOT NULL,      -- the deadline when asked (a changed one makes the request moot)
    proposed_deadline_ms INTEGER NOT NULL,
    status               TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'superseded', 'moot', 'failed')),
    decided_by           TEXT,                  -- Slack user id, or 'bot' (expiry)
    decided_at_ms        INTEGER,
    decision_reason      TEXT,
    expires_at_ms        INTEGER NOT NULL,      -- undecided by then: expired
    channel              TEXT,                  -- the request message, once delivered (first delivery wins)
    ts                   TEXT,
    created_at_ms        INTEGER NOT NULL
) STRICT;
-- A job's requests by status (pending_approval_for_job, superseding).
CREATE INDEX approvals_job ON approvals (tenant_id, job_id, status);
-- At most one pending request per job: a new one supersedes the old in the
-- same transaction, and concurrent requests cannot leave two pending.
CREATE UNIQUE INDEX approvals_one_pending_per_job ON approvals (tenant_id, job_id) WHERE status = 'pending';
-- expire_due_approvals looks only at pending requests by expiry.
CREATE INDEX approvals_expiry ON approvals (expires_at_ms) WHERE status = 'pending';

-- Who did what, when, with what outcome. Append-only.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT, -- write order: breaks ties between equal times
    at_ms     INTEGER NOT NULL,
    tenant_id TEXT,
    actor     TEXT NOT NULL,                    -- Slack user id, or 'bot'
    action    TEXT NOT NULL,                    -- e.g. 'acknowledge', 'extend_deadline'
    subject   TEXT,                             -- usually the job id
    outcome   TEXT NOT NULL,                    -- e.g. 'ok', 'refused: not an operator'
    detail    TEXT                              -- JSON, anything else worth keeping
) STRICT;
-- A subject's history, newest first.
CREATE INDEX audit_subject ON audit_log (subject, at_ms);
-- The whole log, newest first, and pruning by age.
CREATE INDEX audit_at ON audit_log (at_ms);

-- Slack retries events and interactions: each key is handled once (the
-- insert that wins handles it). Pruned after Slack's retry window.
CREATE TABLE processed_events (
    event_id TEXT PRIMARY KEY,                  -- Slack's event_id, or a key built from an interaction
    at_ms    INTEGER NOT NULL                   -- when first seen; prune_processed deletes by it
) STRICT;
CREATE INDEX processed_events_at ON processed_events (at_ms);

-- Singleton work (one poller among replicas) holds a lease that expires, so a
-- dead holder's work is taken over.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,                  -- what is held, e.g. 'poller'
    holder   TEXT NOT NULL,                     -- the replica holding it
    until_ms INTEGER NOT NULL                   -- held while now < until_ms
) STRICT;
