-- Data Vault metadata: datasets, their wrapped data keys, commits and refs. The records
-- themselves live in the object store (blocks and manifests); a commit names its manifest.

CREATE TABLE datasets (
    id             BLOB PRIMARY KEY,
    workspace_id   BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    format         TEXT NOT NULL,
    schema         TEXT NOT NULL,
    tags           TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    created_by     BLOB,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- The dataset's DEK, wrapped by KEK version kek_version (never stored unwrapped).
CREATE TABLE dataset_keys (
    dataset_id  BLOB PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    kek_version INTEGER NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    rewrapped_at TEXT
);

CREATE TABLE dataset_commits (
    dataset_id     BLOB NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    first_parent   TEXT,
    parents        TEXT NOT NULL,
    message        TEXT NOT NULL,
    author_id      BLOB,
    author         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    manifest       TEXT NOT NULL,
    record_count   INTEGER NOT NULL,
    byte_count     INTEGER NOT NULL,
    new_bytes      INTEGER NOT NULL,
    transformation TEXT NOT NULL,
    schema         TEXT NOT NULL,
    depth          INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, id)
);

-- Branches and tags share one namespace per dataset.
CREATE TABLE dataset_refs (
    dataset_id BLOB NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    commit_id  TEXT NOT NULL,
    protected  BOOLEAN NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dataset_id, name)
);
