-- Socket Mode envelopes. Slack sends each slash command, interaction and
-- event over the websocket in an envelope, and sends it again (same
-- envelope_id, retry_attempt + 1, maybe on another connection) when it did
-- not get the ack: after a dropped socket, during a reconnect, or when the
-- ack came too late. The first delivery claims the row and handles the
-- envelope, then stores the ack's payload; a redelivery is acked with that
-- stored payload and is not handled again.
CREATE TABLE socket_envelopes (
    envelope_id    TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,       -- slash_commands | interactive | events_api | ...
    claimed_at_ms  BIGINT NOT NULL,     -- when a delivery started handling it; a claim
                                        -- left unanswered this long is taken over
    answered_at_ms BIGINT,              -- NULL while it is being handled
    answer         TEXT                 -- the ack's payload (JSON); NULL acks with none
);
-- Pruning by age (Slack stops redelivering within minutes).
CREATE INDEX socket_envelopes_claimed ON socket_envelopes (claimed_at_ms);
