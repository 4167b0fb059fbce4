-- Full-text search over audit entries (FTS5, contentless: only the index is stored). The
-- indexed text has no personal data: erasing a person leaves nothing here to erase.
CREATE VIRTUAL TABLE audit_fts USING fts5(body, content = '', tokenize = 'unicode61');

CREATE TRIGGER audit_log_fts_insert AFTER INSERT ON audit_log
BEGIN
    INSERT INTO audit_fts (rowid, body) VALUES (
        NEW.rowid,
        NEW.event_type || ' ' || NEW.event_category || ' ' || NEW.action || ' ' || NEW.status || ' ' ||
        coalesce(NEW.resource_type, '') || ' ' || coalesce(NEW.resource_id, '') || ' ' ||
        NEW.details || ' ' || coalesce(NEW.before_state, '') || ' ' || coalesce(NEW.after_state, ''));
END;

INSERT INTO audit_fts (rowid, body)
SELECT rowid,
       event_type || ' ' || event_category || ' ' || action || ' ' || status || ' ' ||
       coalesce(resource_type, '') || ' ' || coalesce(resource_id, '') || ' ' ||
       details || ' ' || coalesce(before_state, '') || ' ' || coalesce(after_state, '')
FROM audit_log;
