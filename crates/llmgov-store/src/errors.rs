use llmgov_core::CoreError;

/// Maps a database error to a domain error. Constraint names are matched in PostgreSQL's
/// form (`users_email_key`) and SQLite's (`UNIQUE constraint failed: users.email`).
pub fn db_err(e: sqlx::Error) -> CoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            let what = d
                .constraint()
                .map(str::to_string)
                .unwrap_or_else(|| d.message().to_string());
            let (code, msg) = if what.contains("dataset_refs") {
                (
                    "REF_EXISTS",
                    "a branch or tag with that name already exists",
                )
            } else if what.contains("dataset_commits") {
                ("COMMIT_EXISTS", "that commit already exists")
            } else if what.contains("datasets") {
                (
                    "DATASET_EXISTS",
                    "a dataset with that name already exists in this workspace",
                )
            } else if what.contains("alert_rules") {
                (
                    "ALERT_RULE_EXISTS",
                    "an alert rule with that name already exists in this workspace",
                )
            } else if what.contains("email") {
                ("EMAIL_TAKEN", "a user with that email already exists")
            } else if what.contains("username") {
                ("USERNAME_TAKEN", "a user with that username already exists")
            } else if what.contains("roles") {
                (
                    "ROLE_EXISTS",
                    "a role with that name already exists in this workspace",
                )
            } else if what.contains("policies") {
                (
                    "POLICY_EXISTS",
                    "a policy with that name already exists in this workspace",
                )
            } else if what.contains("memberships") {
                (
                    "ALREADY_MEMBER",
                    "the user is already a member of this workspace",
                )
            } else {
                ("CONFLICT", "the resource already exists")
            };
            CoreError::conflict(code, msg)
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            CoreError::conflict("REFERENCE_MISSING", "a referenced resource does not exist")
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => CoreError::Unavailable(e.to_string()),
        _ => CoreError::Internal(e.to_string()),
    }
}

/// Any failure while appending an audit entry: the change must not happen.
pub fn audit_err(e: sqlx::Error) -> CoreError {
    tracing::error!(error = %e, "audit append failed; rejecting the change");
    CoreError::AuditUnavailable
}
