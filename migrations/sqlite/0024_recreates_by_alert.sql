-- An alert's Timeline and review read the audit of every job the alert
-- followed: its own and each job a finished recreate made
-- (`Store::alert_history`). Those recreates are found by alert, so that the
-- lookup reads the alert's few rows, not the whole table.
CREATE INDEX intents_recreated ON intents (alert_id) WHERE kind = 'recreate' AND status = 'done';
