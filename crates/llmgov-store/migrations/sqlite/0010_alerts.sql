-- Alert rules on metrics (the rule as given is kept as JSON in spec) and their alerts. At
-- most one pending or firing alert exists per rule and group (the partial unique index), so
-- a condition that keeps holding is one alert.

CREATE TABLE alert_rules (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    spec         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   BLOB,
    UNIQUE (workspace_id, name)
);

CREATE TABLE alerts (
    id              BLOB PRIMARY KEY,
    workspace_id    BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    rule_id         BLOB NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    rule_name       TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    state           TEXT NOT NULL,
    severity        TEXT NOT NULL,
    value           REAL,
    threshold       REAL NOT NULL,
    started_at      TEXT NOT NULL,
    fired_at        TEXT,
    resolved_at     TEXT,
    acknowledged_at TEXT,
    acknowledged_by BLOB,
    snoozed_until   TEXT,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_active_idx ON alerts (rule_id, group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_workspace_idx ON alerts (workspace_id, updated_at DESC);
