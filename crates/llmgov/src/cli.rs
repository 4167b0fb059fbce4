//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "llmgov",
    version,
    about = "llmgov: Data Vault and Governance Dashboard for LLM data and use"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./llmgov.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded database (default ./llmgov-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (overrides config and env).
    #[arg(long, global = true, value_name = "URL", visible_alias = "database")]
    pub database_url: Option<String>,
    /// Log format: json or pretty.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (both products on one port).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Operator commands that work directly on the database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify audit logs. With --export: verify an exported file offline against a signed
    /// checkpoint and the checkpoint public key, trusting no server. Otherwise: verify every
    /// workspace's log in the database (read-only). Exits non-zero, with the first bad
    /// entry's sequence on the last line, when anything does not verify.
    Verify {
        /// An export (`GET /api/v1/audit/export?format=jsonl`).
        #[arg(long, value_name = "FILE", requires_all = ["checkpoint", "public_key"])]
        export: Option<PathBuf>,
        /// The checkpoint the export was taken at (`GET /api/v1/audit/checkpoints/latest`).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The checkpoint public key (`GET /api/v1/audit/checkpoints/public-key`, or its hex).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (in the first workspace unless --workspace-id is given).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        /// Password; generated and printed once when omitted.
        #[arg(long, env = "LLMGOV_NEW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Role to grant (repeatable), e.g. --role admin.
        #[arg(long = "role", default_value = "viewer")]
        roles: Vec<String>,
        #[arg(long)]
        workspace_id: Option<uuid::Uuid>,
    },
    /// Set a user's password; every session of the user ends.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// New password; generated and printed once when omitted.
        #[arg(long, env = "LLMGOV_NEW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}
