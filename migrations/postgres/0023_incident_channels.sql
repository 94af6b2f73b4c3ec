-- Issue 38: an alert episode's incident channel.
-- migrations/sqlite/0023_incident_channels.sql has the same; keep the two in step.
--
-- One row per alert (an alert is one job's risk episode): the claim that
-- decides, once across clicks and replicas, that the episode has a channel.
-- `channel` is empty until Slack created it (the open step fills it, once,
-- with a conditional update) or is the channel `/backfill incident link`
-- named. `archived_at_ms` is set once, by *Archive channel*.
CREATE TABLE incident_channels (
    alert_id          TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    job_id            TEXT NOT NULL,
    name              TEXT NOT NULL,
    channel           TEXT,
    linked            BIGINT NOT NULL DEFAULT 0,
    requested_by      TEXT NOT NULL,
    requested_at_ms   BIGINT NOT NULL,
    opened_at_ms      BIGINT,
    failed            TEXT,
    archived_at_ms    BIGINT,
    archived_by       TEXT
);
CREATE INDEX incident_channels_by_channel ON incident_channels (channel);

-- How an alert episode ended (issue 38), answered once after it resolved,
-- whether or not it had a channel: mitigated | expected | false_alarm | missed.
CREATE TABLE alert_dispositions (
    alert_id     TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    asset        TEXT NOT NULL,
    disposition  TEXT NOT NULL,
    note         TEXT,
    answered_by  TEXT NOT NULL,
    answered_at_ms BIGINT NOT NULL
);
CREATE INDEX alert_dispositions_by_time ON alert_dispositions (tenant_id, answered_at_ms);
