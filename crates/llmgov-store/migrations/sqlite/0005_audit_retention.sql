-- Retention: entries below `pruned_before` may be deleted (only up to a signed checkpoint,
-- by the retention task). `pruned_anchor` is the hash the first kept entry chains from, so
-- the kept log still verifies; tree nodes are kept, so proofs for kept entries still work.
ALTER TABLE audit_heads ADD COLUMN pruned_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_heads ADD COLUMN pruned_anchor BLOB;

DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.sequence >= (SELECT pruned_before FROM audit_heads WHERE workspace_id = OLD.workspace_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
