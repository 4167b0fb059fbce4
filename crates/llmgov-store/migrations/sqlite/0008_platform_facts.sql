-- Facts about models and datasets that policies read as data.platform.models.<name> and
-- data.platform.datasets.<name> (evaluation scores, risk level, retention, anonymization).
-- Written through the API now; the metrics and vault parts add theirs.

CREATE TABLE platform_facts (
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    facts        TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   BLOB,
    PRIMARY KEY (workspace_id, kind, name)
);
