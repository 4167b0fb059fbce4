-- PII engine state.

-- A workspace's secret for the keyed anonymization operators (hash, encrypt, pseudonymize,
-- tokenize), wrapped by the key-encryption key like a dataset key and rewrapped with them.
CREATE TABLE workspace_keys (
    workspace_id BLOB PRIMARY KEY,
    kek_version  INTEGER NOT NULL,
    wrapped      BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    rewrapped_at TEXT
);

-- Detection settings and anonymization profiles (JSON), versioned so that scans made
-- with older settings are known to be stale.
CREATE TABLE pii_settings (
    workspace_id BLOB PRIMARY KEY,
    settings     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   BLOB
);

-- The token vault: a token's value, sealed with the workspace's key (never in clear).
CREATE TABLE pii_tokens (
    workspace_id BLOB NOT NULL,
    token        TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, token)
);

-- Findings per dataset version (counts per type and field, sample locations; sample
-- values only sealed).
CREATE TABLE dataset_pii (
    workspace_id     BLOB NOT NULL,
    dataset_id       BLOB NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    commit_id        TEXT NOT NULL,
    settings_version BIGINT NOT NULL,
    report           TEXT NOT NULL,
    scanned_at       TEXT NOT NULL,
    PRIMARY KEY (dataset_id, commit_id)
);
