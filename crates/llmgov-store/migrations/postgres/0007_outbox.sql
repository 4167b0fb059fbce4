-- Transactional outbox: messages written in the same transaction as the change that causes
-- them, delivered afterwards by a dispatcher (webhooks of `notify` policy actions today; the
-- event bus later). A message is `pending` until delivered, then `delivered`; after its last
-- attempt it is `dead`, with the last error kept.

CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    topic           TEXT NOT NULL,
    destination     TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_workspace_idx ON outbox (workspace_id, created_at DESC);
