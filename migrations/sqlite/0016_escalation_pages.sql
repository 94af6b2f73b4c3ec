-- Issue 33: each escalation (epoch) is its own PagerDuty incident, and every
-- page is remembered.
--
-- PagerDuty ignores new triggers under the dedup key of an incident that is
-- acknowledged, so a path that re-arms after an acknowledgement triggers
-- under a key of its own, and the acknowledged incident is resolved.
-- `pd_dedup_key` is the key the escalation's epoch triggered under (NULL
-- before this migration, or when nothing has triggered yet: a row that has
-- `pd_triggered` and no key triggered under `servo-sla-bot-<alert>`, the
-- only key there was). Reset with `pd_triggered` when a new epoch starts.
ALTER TABLE escalations ADD COLUMN pd_dedup_key TEXT;

-- One row per tier paged, written in the transaction that pages it: which
-- position of the path (epoch, round, tier), when, and who or what paged it
-- (`how`: `start`, the escalation starting; `step`, the previous tier's
-- wait running out; `escalate_now`, a click, with `paged_by` the person who
-- clicked; `bot`, the bot moving up a tier, with its `reason`). A click
-- on an Escalate now button whose tier was already paged reads it to say
-- by whom and when, and pages nobody. migrations/postgres/0016_escalation_pages.sql has the same; keep
-- the two in step.
CREATE TABLE escalation_pages (
    alert_id    TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    round       INTEGER NOT NULL,
    tier        INTEGER NOT NULL,
    paged_at_ms INTEGER NOT NULL,
    how         TEXT NOT NULL,
    paged_by    TEXT,
    reason      TEXT,
    PRIMARY KEY (alert_id, epoch, round, tier)
);
