-- Identity, access and the audit log. Migrations are append-only: never edit a released one.

CREATE TABLE workspaces (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Platform-wide settings (the system workspace id).
CREATE TABLE system_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    username      TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    password_hash TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ
);

CREATE TABLE memberships (
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships(user_id);

-- Role assignments by name: predefined roles live in code, custom roles in `roles`.
CREATE TABLE user_roles (
    workspace_id UUID NOT NULL,
    user_id      UUID NOT NULL,
    role_name    TEXT NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id, role_name),
    FOREIGN KEY (workspace_id, user_id) REFERENCES memberships(workspace_id, user_id) ON DELETE CASCADE
);

CREATE TABLE roles (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    permissions  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT roles_workspace_name_key UNIQUE (workspace_id, name)
);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL,
    user_id      UUID NOT NULL,
    name         TEXT NOT NULL,
    key_prefix   TEXT NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    key_hash     BYTEA NOT NULL,
    scopes       TEXT NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    FOREIGN KEY (workspace_id, user_id) REFERENCES memberships(workspace_id, user_id) ON DELETE CASCADE
);
CREATE INDEX api_keys_workspace_idx ON api_keys(workspace_id, created_at);

CREATE TABLE refresh_tokens (
    id           UUID PRIMARY KEY,
    family_id    UUID NOT NULL,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL,
    token_hash   BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens(family_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    status       INTEGER,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

-- One row per workspace log: the next sequence and the hash of the last entry. Appends
-- lock this row, which serialises writers across instances.
CREATE TABLE audit_heads (
    workspace_id  UUID PRIMARY KEY,
    next_sequence BIGINT NOT NULL,
    head_hash     BYTEA NOT NULL
);

-- No foreign keys: the log outlives the users and workspaces it mentions.
CREATE TABLE audit_log (
    workspace_id   UUID NOT NULL,
    sequence       BIGINT NOT NULL,
    id             UUID NOT NULL CONSTRAINT audit_log_id_key UNIQUE,
    format_version SMALLINT NOT NULL,
    timestamp      TIMESTAMPTZ NOT NULL,
    event_type     TEXT NOT NULL,
    event_category TEXT NOT NULL,
    actor_id       UUID,
    actor_type     TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    status         TEXT NOT NULL,
    request_id     TEXT,
    session_id     TEXT,
    details        TEXT NOT NULL,
    before_state   TEXT,
    after_state    TEXT,
    personal       TEXT,
    pii_salt       BYTEA,
    pii_digest     BYTEA NOT NULL,
    prev_hash      BYTEA NOT NULL,
    entry_hash     BYTEA NOT NULL,
    PRIMARY KEY (workspace_id, sequence)
);
CREATE INDEX audit_log_time_idx ON audit_log(workspace_id, timestamp);
CREATE INDEX audit_log_event_idx ON audit_log(workspace_id, event_type, timestamp);
CREATE INDEX audit_log_actor_idx ON audit_log(workspace_id, actor_id, timestamp);
CREATE INDEX audit_log_resource_idx ON audit_log(workspace_id, resource_type, resource_id);

-- Append-only: rows can never be deleted, and the only update allowed is erasing the
-- personal data (which the chain does not hash directly).
CREATE FUNCTION audit_log_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
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

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
