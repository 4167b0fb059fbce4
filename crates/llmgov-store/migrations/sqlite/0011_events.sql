-- Events for the real-time streams (WebSocket and SSE), written by the transactional
-- outbox in the transaction of the change that causes them. The id orders them: on
-- PostgreSQL, transactions that write events take one advisory lock from their event
-- insert to their commit, so ids become visible in increasing order and a reader that
-- tails by id never skips one. Clients resume after a disconnection from the last id they
-- saw. Events are kept for a short retention ([events] retention_hours).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX events_workspace_idx ON events (workspace_id, id);
CREATE INDEX events_created_idx ON events (created_at);

-- How far each relay (NATS JetStream) has published the events, and which instance holds
-- the relay's lease: one instance publishes at a time, in id order.
CREATE TABLE event_relays (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    holder      BLOB,
    lease_until TEXT NOT NULL
);

-- Webhooks are signed (HMAC-SHA256) with their channel's secret at each attempt; the HTTP
-- status of the last attempt is kept for the delivery log.
ALTER TABLE outbox ADD COLUMN signing_secret TEXT;
ALTER TABLE outbox ADD COLUMN last_status INTEGER;
ALTER TABLE outbox ADD COLUMN last_attempt_at TEXT;
