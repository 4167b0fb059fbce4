-- Identity, access and the audit log. Migrations are append-only: never edit a released one.

CREATE TABLE workspaces (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL
);

-- Platform-wide settings (the system workspace id).
CREATE TABLE system_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    username      TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    password_hash TEXT NOT NULL,
    first_name    TEXT,
    last_name     TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    last_login_at TEXT
);

CREATE TABLE memberships (
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships(user_id);

-- Role assignments by name: predefined roles live in code, custom roles in `roles`.
CREATE TABLE user_roles (
    workspace_id BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    role_name    TEXT NOT NULL,
    assigned_at  TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, role_name),
    FOREIGN KEY (workspace_id, user_id) REFERENCES memberships(workspace_id, user_id) ON DELETE CASCADE
);

CREATE TABLE roles (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    permissions  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CONSTRAINT roles_workspace_name_key UNIQUE (workspace_id, name)
);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY,
    workspace_id BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    name         TEXT NOT NULL,
    key_prefix   TEXT NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    key_hash     BLOB NOT NULL,
    scopes       TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    FOREIGN KEY (workspace_id, user_id) REFERENCES memberships(workspace_id, user_id) ON DELETE CASCADE
);
CREATE INDEX api_keys_workspace_idx ON api_keys(workspace_id, created_at);

CREATE TABLE refresh_tokens (
    id           BLOB PRIMARY KEY,
    family_id    BLOB NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL,
    token_hash   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    revoked_at   TEXT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens(family_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status       INTEGER,
    body         BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- One row per workspace log: the next sequence and the hash of the last entry. Appends
-- lock this row, which serialises writers across instances.
CREATE TABLE audit_heads (
    workspace_id  BLOB PRIMARY KEY,
    next_sequence INTEGER NOT NULL,
    head_hash     BLOB NOT NULL
);

-- No foreign keys: the log outlives the users and workspaces it mentions.
CREATE TABLE audit_log (
    workspace_id   BLOB NOT NULL,
    sequence       INTEGER NOT NULL,
    id             BLOB NOT NULL CONSTRAINT audit_log_id_key UNIQUE,
    format_version INTEGER NOT NULL,
    timestamp      TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    event_category TEXT NOT NULL,
    actor_id       BLOB,
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
    pii_salt       BLOB,
    pii_digest     BLOB NOT NULL,
    prev_hash      BLOB NOT NULL,
    entry_hash     BLOB NOT NULL,
    PRIMARY KEY (workspace_id, sequence)
);
CREATE INDEX audit_log_time_idx ON audit_log(workspace_id, timestamp);
CREATE INDEX audit_log_event_idx ON audit_log(workspace_id, event_type, timestamp);
CREATE INDEX audit_log_actor_idx ON audit_log(workspace_id, actor_id, timestamp);
CREATE INDEX audit_log_resource_idx ON audit_log(workspace_id, resource_type, resource_id);

-- Append-only: rows can never be deleted, and the only update allowed is erasing the
-- personal data (which the chain does not hash directly).
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NEW.personal IS NOT NULL OR NEW.pii_salt IS NOT NULL
    OR NEW.workspace_id IS NOT OLD.workspace_id OR NEW.sequence IS NOT OLD.sequence
    OR NEW.id IS NOT OLD.id OR NEW.timestamp IS NOT OLD.timestamp
    OR NEW.event_type IS NOT OLD.event_type OR NEW.details IS NOT OLD.details
    OR NEW.before_state IS NOT OLD.before_state OR NEW.after_state IS NOT OLD.after_state
    OR NEW.status IS NOT OLD.status OR NEW.entry_hash IS NOT OLD.entry_hash
    OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.pii_digest IS NOT OLD.pii_digest
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
