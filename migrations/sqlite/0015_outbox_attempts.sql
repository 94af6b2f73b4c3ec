-- Issue 33: an outbox attempt whose fate was never recorded. The claim that
-- starts an attempt counts it here, in the same statement, before any call
-- to Slack; recording how the attempt ended (sent, handed back to wait or
-- retry, failed) sets the count back to 0. A row claimed with a count of 2
-- or more: the attempt before ended with nothing recorded (the process was
-- killed or ran out of memory, or lost its database, during the call or
-- just after it), so its post may be in Slack, whatever the last recorded
-- error says: the worker looks for it by its metadata key before posting
-- again. A claim handed back at shutdown keeps its count.
ALTER TABLE outbox ADD COLUMN unsettled_attempts INTEGER NOT NULL DEFAULT 0;
