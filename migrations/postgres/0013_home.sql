-- Issue 23: the App Home. Who has opened their Home, and the tenants it
-- showed them (",acme,globex,"), so a change in a tenant refreshes the
-- Homes of the people who belong to it, and nobody else's.
CREATE TABLE home_viewers (
    user_id          TEXT PRIMARY KEY,
    tenants          TEXT NOT NULL,
    opened_at_ms     BIGINT NOT NULL,
    published_at_ms  BIGINT
);
