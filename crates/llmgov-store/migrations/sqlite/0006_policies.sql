-- Governance policies (seed 000 §4.1.1): current state, immutable versions, evaluations
-- and violations. `spec` is the JSON of the versioned part (definition, conditions,
-- actions, controls, ...); the columns beside it are copies for filtering and sorting.

CREATE TABLE policies (
    id             BLOB PRIMARY KEY,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT,
    policy_type    TEXT NOT NULL,
    category       TEXT,
    priority       INTEGER NOT NULL,
    status         TEXT NOT NULL,
    spec           TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_by     BLOB,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    CONSTRAINT policies_workspace_name_key UNIQUE (workspace_id, name)
);
CREATE INDEX policies_active_idx ON policies (workspace_id, status, priority DESC);

CREATE TABLE policy_versions (
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    policy_id      BLOB NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    spec           TEXT NOT NULL,
    changed_by     BLOB,
    changed_at     TEXT NOT NULL,
    change_summary TEXT,
    PRIMARY KEY (policy_id, version)
);

CREATE TABLE policy_evaluations (
    id              BLOB PRIMARY KEY,
    workspace_id    BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    evaluated_at    TEXT NOT NULL,
    decision        TEXT NOT NULL,
    policy_ids      TEXT NOT NULL,
    violation_count INTEGER NOT NULL,
    input           TEXT NOT NULL,
    -- Who spent what, from the call's `team`, `user` and `cost`: the platform's spend facts.
    team            TEXT,
    user_ref        TEXT,
    cost            REAL NOT NULL DEFAULT 0
);
CREATE INDEX policy_evaluations_recent_idx ON policy_evaluations (workspace_id, evaluated_at DESC);

-- Spend per team and per user per UTC day (`day` is YYYY-MM-DD), added to as guardrail calls
-- are recorded, so that a budget reads one row for the day and at most 31 for the month.
CREATE TABLE policy_spend (
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    subject        TEXT NOT NULL,
    day            TEXT NOT NULL,
    cost           REAL NOT NULL,
    PRIMARY KEY (workspace_id, scope, subject, day)
);

CREATE TABLE policy_violations (
    id               BLOB PRIMARY KEY,
    workspace_id     BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    policy_id        BLOB NOT NULL REFERENCES policies(id),
    policy_version   INTEGER NOT NULL,
    evaluation_id    BLOB,
    rule             TEXT NOT NULL,
    message          TEXT NOT NULL,
    severity         TEXT NOT NULL,
    decision         TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    resource_id      TEXT,
    details          TEXT NOT NULL,
    status           TEXT NOT NULL,
    detected_at      TEXT NOT NULL,
    updated_at       TEXT,
    resolved_by      BLOB,
    resolution_notes TEXT
);
CREATE INDEX policy_violations_detected_idx ON policy_violations (workspace_id, detected_at DESC);
CREATE INDEX policy_violations_policy_idx ON policy_violations (workspace_id, policy_id, detected_at DESC);
CREATE INDEX policy_violations_status_idx ON policy_violations (workspace_id, status);
