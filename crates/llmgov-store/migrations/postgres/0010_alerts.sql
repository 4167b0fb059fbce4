-- Alert rules on metrics (the rule as given is kept as JSON in spec) and their alerts. At
-- most one pending or firing alert exists per rule and group (the partial unique index), so
-- a condition that keeps holding is one alert.

CREATE TABLE alert_rules (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL,
    spec         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    UNIQUE (workspace_id, name)
);

CREATE TABLE alerts (
    id              UUID PRIMARY KEY,
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    rule_id         UUID NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    rule_name       TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    state           TEXT NOT NULL,
    severity        TEXT NOT NULL,
    value           DOUBLE PRECISION,
    threshold       DOUBLE PRECISION NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    fired_at        TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ,
    acknowledged_at TIMESTAMPTZ,
    acknowledged_by UUID,
    snoozed_until   TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX alerts_active_idx ON alerts (rule_id, group_key) WHERE state <> 'resolved';
CREATE INDEX alerts_workspace_idx ON alerts (workspace_id, updated_at DESC);
