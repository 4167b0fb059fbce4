-- Signed checkpoints (tree size + Merkle root, Ed25519) of each workspace's audit log.
CREATE TABLE audit_checkpoints (
    workspace_id BLOB NOT NULL,
    tree_size    INTEGER NOT NULL,
    root_hash    TEXT NOT NULL,
    timestamp    TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    PRIMARY KEY (workspace_id, tree_size)
);
