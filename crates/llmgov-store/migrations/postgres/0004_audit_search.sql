-- Full-text search over audit entries. The indexed text has no personal data: erasing a
-- person leaves nothing here to erase.
ALTER TABLE audit_log ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple',
        event_type || ' ' || event_category || ' ' || action || ' ' || status || ' ' ||
        coalesce(resource_type, '') || ' ' || coalesce(resource_id, '') || ' ' ||
        details || ' ' || coalesce(before_state, '') || ' ' || coalesce(after_state, ''))
) STORED;
CREATE INDEX audit_log_search_idx ON audit_log USING GIN (search);
