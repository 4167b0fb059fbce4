-- Retention: entries below `pruned_before` may be deleted (only up to a signed checkpoint,
-- by the retention task). `pruned_anchor` is the hash the first kept entry chains from, so
-- the kept log still verifies; tree nodes are kept, so proofs for kept entries still work.
ALTER TABLE audit_heads ADD COLUMN pruned_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_heads ADD COLUMN pruned_anchor BYTEA;

CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.sequence < (SELECT pruned_before FROM audit_heads WHERE workspace_id = OLD.workspace_id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    IF NEW.personal IS NOT NULL OR NEW.pii_salt IS NOT NULL
       OR (ROW(NEW.workspace_id, NEW.sequence, NEW.id, NEW.timestamp, NEW.event_type, NEW.details,
               NEW.before_state, NEW.after_state, NEW.status, NEW.entry_hash, NEW.prev_hash, NEW.pii_digest)
           IS DISTINCT FROM
           ROW(OLD.workspace_id, OLD.sequence, OLD.id, OLD.timestamp, OLD.event_type, OLD.details,
               OLD.before_state, OLD.after_state, OLD.status, OLD.entry_hash, OLD.prev_hash, OLD.pii_digest)) THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
