-- Issue 22: in a storm, what matters goes first. Each outbox row carries a
-- priority, set when it is enqueued: 0 pages (DMs, PagerDuty) and new posts
-- (an alert, an extension request), 1 other replies, 2 edits and other calls,
-- 3 charts and check-ins. The worker claims the lowest first, in id
-- order within a priority; one ordering key's rows still go strictly in id
-- order, whatever their priorities.
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;
-- The claim: pending rows by priority, then id.
CREATE INDEX outbox_claim ON outbox (status, priority, id);
-- Coalescing: a new edit of a message supersedes the pending edits of it.
CREATE INDEX outbox_edits ON outbox (thread_alert_id, status) WHERE method = 'chat.update';
