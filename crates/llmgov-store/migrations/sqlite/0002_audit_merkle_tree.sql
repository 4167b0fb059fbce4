-- Merkle tree over each workspace's audit log (RFC 9162). The head row keeps the tree's
-- right edge (`frontier`: roots of its complete subtrees, largest first) and `tree_size`;
-- `audit_tree_nodes` keeps every complete subtree root, so tree heads and proofs at any
-- size read O(log n) rows. Logs written before this migration are backfilled at start.
ALTER TABLE audit_heads ADD COLUMN frontier BLOB NOT NULL DEFAULT x'';
ALTER TABLE audit_heads ADD COLUMN tree_size INTEGER NOT NULL DEFAULT 0;

CREATE TABLE audit_tree_nodes (
    workspace_id BLOB NOT NULL,
    level        INTEGER NOT NULL,
    idx          INTEGER NOT NULL,
    hash         BLOB NOT NULL,
    PRIMARY KEY (workspace_id, level, idx)
);
