-- Issue 20: a timer that fails is tried again with exponential backoff
-- rather than at once (a hot loop against Slack while it rate-limits).
-- `attempts` counts the failures so far; the next try is due 2^attempts
-- seconds later, at most five minutes.
ALTER TABLE timers ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
