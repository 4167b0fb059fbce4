-- Data Vault metadata: datasets, their wrapped data keys, commits and refs. The records
-- themselves live in the object store (blocks and manifests); a commit names its manifest.

CREATE TABLE datasets (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    format         TEXT NOT NULL,
    schema         TEXT NOT NULL,
    tags           TEXT NOT NULL,
    metadata       TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    created_by     UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (workspace_id, name)
);

-- The dataset's DEK, wrapped by KEK version kek_version (never stored unwrapped).
CREATE TABLE dataset_keys (
    dataset_id  UUID PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    kek_version INTEGER NOT NULL,
    wrapped     BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    rewrapped_at TIMESTAMPTZ
);

CREATE TABLE dataset_commits (
    dataset_id     UUID NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    first_parent   TEXT,
    parents        TEXT NOT NULL,
    message        TEXT NOT NULL,
    author_id      UUID,
    author         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    manifest       TEXT NOT NULL,
    record_count   BIGINT NOT NULL,
    byte_count     BIGINT NOT NULL,
    new_bytes      BIGINT NOT NULL,
    transformation TEXT NOT NULL,
    schema         TEXT NOT NULL,
    depth          BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, id)
);

-- Branches and tags share one namespace per dataset.
CREATE TABLE dataset_refs (
    dataset_id UUID NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    commit_id  TEXT NOT NULL,
    protected  BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset_id, name)
);
