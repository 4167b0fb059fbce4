-- Signed checkpoints (tree size + Merkle root, Ed25519) of each workspace's audit log.
CREATE TABLE audit_checkpoints (
    workspace_id UUID NOT NULL,
    tree_size    BIGINT NOT NULL,
    root_hash    TEXT NOT NULL,
    timestamp    TIMESTAMPTZ NOT NULL,
    key_id       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, tree_size)
);
