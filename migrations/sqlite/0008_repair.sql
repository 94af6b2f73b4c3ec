-- Issue 20: a timer that fails is tried again with exponential backoff
-- rather than at once (a hot loop against Slack while it rate-limits).
-- `attempts` counts the failures so far; the next try is due 2^attempts
-- seconds later, at most five minutes.
ALTER TABLE timers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

-- The outbox rows that post an alert or a request, by what they post: the
-- repair pass and the outbox ask whether a post was written, and why it was
-- refused, for each alert they look at.
CREATE INDEX outbox_link ON outbox (link_kind, link_id) WHERE link_kind IS NOT NULL;

-- An approved extension is recorded as approved (the decision, once), then
-- written to Servo, then marked applied. A crash in between leaves it approved
-- and not applied, and the repair pass applies it (or records why it cannot).
-- Extensions approved before this migration were applied (or amended to
-- failed) when they were decided.
ALTER TABLE approvals ADD COLUMN applied_at_ms INTEGER;
UPDATE approvals SET applied_at_ms = decided_at_ms WHERE status = 'approved';
