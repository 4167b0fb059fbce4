-- Merkle tree over each workspace's audit log (RFC 9162). The head row keeps the tree's
-- right edge (`frontier`: roots of its complete subtrees, largest first) and `tree_size`;
-- `audit_tree_nodes` keeps every complete subtree root, so tree heads and proofs at any
-- size read O(log n) rows. Logs written before this migration are backfilled at start.
ALTER TABLE audit_heads ADD COLUMN frontier BYTEA NOT NULL DEFAULT '\x';
ALTER TABLE audit_heads ADD COLUMN tree_size BIGINT NOT NULL DEFAULT 0;

CREATE TABLE audit_tree_nodes (
    workspace_id UUID NOT NULL,
    level        SMALLINT NOT NULL,
    idx          BIGINT NOT NULL,
    hash         BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, level, idx)
);
