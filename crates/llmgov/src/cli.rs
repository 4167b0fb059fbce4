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
        /// Fill a workspace named "Demo" with sample data (a week of LLM metrics, policies
        /// with violations, alerts, audit entries and a dataset with PII), through the
        /// platform's own services. Skipped when the demo workspace already exists.
        #[arg(long)]
        demo: bool,
    },
    /// Prepare a deployment without starting it: apply migrations and create the vault's
    /// key file (sealed with the passphrase) or reach the HSM token, and the object store.
    Init,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document of the HTTP API (JSON) and exit; the web UI's types are
    /// generated from it.
    Openapi,
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
    /// Data Vault client: push, pull and inspect datasets on a running server.
    Dataset(DatasetArgs),
    /// Data Vault maintenance on the configured database and object store.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// Key-encryption keys of the vault (the same as `vault rotate-keys|trim-keys`).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// PII and secret detection on local files (no server).
    Pii {
        #[command(subcommand)]
        command: PiiCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Scan JSON Lines records `{"id", "text"}`; writes `{"id", "entities": [{"type", "start",
    /// "end", "score", "recognizer"}]}` per line (code-point offsets, end exclusive).
    Scan {
        file: PathBuf,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Drop findings scoring below this.
        #[arg(long, default_value_t = 0.5)]
        min_score: f32,
        /// Detection settings (JSON, as `PUT /api/v1/pii/config`'s `scan`): enabled types,
        /// thresholds, custom recognizers, allow lists.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Anonymize JSON Lines records. A record with a `"text"` string gets that text
    /// anonymized (`{"id", "text", "items"}`); any other record is anonymized field by field.
    Anonymize {
        file: PathBuf,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// `TYPE=OP`, repeatable. OP: redact, replace[:TEXT], mask[:N], hash, encrypt,
        /// pseudonymize, tokenize, keep.
        #[arg(long = "operator", value_name = "TYPE=OP")]
        operators: Vec<String>,
        /// The operator of types without one of their own.
        #[arg(long, default_value = "replace", value_name = "OP")]
        default: String,
        /// `PATH=OP`, repeatable: a field of structured records replaced whole.
        #[arg(long = "field", value_name = "PATH=OP")]
        fields: Vec<String>,
        /// A profile (JSON: `operators`, `default`, `fields`) instead of the flags.
        #[arg(long, conflicts_with_all = ["operators", "fields"])]
        profile: Option<PathBuf>,
        /// Detection settings (JSON), as for `scan`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The 32-byte secret of hash, encrypt, pseudonymize and tokenize (hex); created
        /// (mode 0600) if missing. Keep it: without it nothing can be decrypted.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Pseudonyms are consistent within a scope (for example a dataset name).
        #[arg(long, default_value = "")]
        scope: String,
        /// Where `tokenize` writes its token vault (JSON Lines `{"token", "type",
        /// "value"}`; appended, mode 0600). Required by `tokenize` offline; the server keeps
        /// its token vault encrypted instead.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Server base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "LLMGOV_SERVER", global = true)]
    pub server: Option<String>,
    /// API key (`lgv_...`) with the datasets permissions the command needs.
    #[arg(long, env = "LLMGOV_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    #[command(subcommand)]
    pub command: DatasetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Import a JSON Lines, CSV or Parquet file as a new version (creates the dataset if
    /// missing, in the format of the file's extension).
    Push {
        file: PathBuf,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
        /// `reject` (default) or `skip` malformed lines.
        #[arg(long, default_value = "reject")]
        on_error: String,
        /// A version of another dataset this file was made from (`NAME` or `NAME@REF`),
        /// recorded in the lineage; repeatable.
        #[arg(long = "source")]
        sources: Vec<String>,
        /// Files larger than one part go as a resumable upload of parts of this many MiB:
        /// after an interruption, the same command goes on from what the server has.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=64))]
        part_mib: u64,
    },
    /// Delete a dataset with its history (refused while other datasets were made from it,
    /// unless `--force`).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Export a version to a file.
    Pull {
        name: String,
        /// Branch, tag or commit (default: the default branch).
        #[arg(long = "ref")]
        reference: Option<String>,
        #[arg(short, long)]
        output: PathBuf,
        /// `jsonl`, `csv` or `parquet` (default: the output's extension, else the
        /// dataset's format).
        #[arg(long)]
        format: Option<String>,
        /// Anonymize every record with this profile of the workspace's PII settings.
        #[arg(long)]
        profile: Option<String>,
    },
    /// PII findings of a version: counts per type and per field, sample locations (values
    /// only with `pii:read`).
    Pii {
        name: String,
        /// Branch, tag or commit (default: the default branch).
        #[arg(long = "ref")]
        reference: Option<String>,
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an anonymized version of a dataset in another dataset (created if missing),
    /// with the source version in its lineage.
    Anonymize {
        name: String,
        /// The anonymization profile (of the workspace's PII settings).
        #[arg(long)]
        profile: String,
        /// The dataset that receives the anonymized version.
        #[arg(long)]
        target: String,
        /// The source version (default: the default branch).
        #[arg(long = "ref")]
        reference: Option<String>,
    },
    /// History of a branch, newest first.
    Log {
        name: String,
        #[arg(long = "ref")]
        reference: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Records added, removed and changed between two refs.
    Diff {
        name: String,
        from: String,
        to: String,
        /// Entries listed (the summary counts every one).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Merge a ref into a branch (record-level; conflicts are listed, nothing committed).
    Merge {
        name: String,
        source: String,
        /// Branch merged into (default: the default branch).
        #[arg(long)]
        into: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Undo a commit's changes as a new commit.
    Revert {
        name: String,
        commit: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
    },
    /// Datasets of the workspace.
    List,
    /// List branches, or create (--create NAME [--from REF]) or delete (--delete NAME) one.
    Branch {
        name: String,
        #[arg(long, conflicts_with = "delete")]
        create: Option<String>,
        #[arg(long, requires = "create")]
        from: Option<String>,
        #[arg(long)]
        delete: Option<String>,
    },
    /// Tag a ref (default: the default branch).
    Tag {
        name: String,
        tag: String,
        #[arg(long = "ref")]
        reference: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify audit logs. With --export: verify an exported file (JSON Lines or a binary
    /// `.lgva` archive, told apart by its first bytes) offline against a signed checkpoint
    /// and the checkpoint public key, trusting no server. Otherwise: verify every
    /// workspace's log in the database (read-only). Exits non-zero, with the first bad
    /// entry's sequence on the last line, when anything does not verify.
    Verify {
        /// An export (`GET /api/v1/audit/export?format=jsonl` or `?format=archive`).
        #[arg(long, value_name = "FILE", requires = "public_key")]
        export: Option<PathBuf>,
        /// The checkpoint the export was taken at (`GET /api/v1/audit/checkpoints/latest`).
        /// Needed for JSON Lines; an archive embeds its own, which this one overrides.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The checkpoint public key (`GET /api/v1/audit/checkpoints/public-key`, or its hex).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Convert an export between JSON Lines and the binary archive (`.lgva`): an archive
    /// becomes JSON Lines (to read it, or to feed other tools); JSON Lines becomes an archive
    /// (embedding --checkpoint), which verifies several times faster. Converting checks
    /// nothing: verify the result (or the input) with `audit verify --export`.
    Convert {
        /// The export to read.
        input: PathBuf,
        /// Where to write the other format (`-` for standard output).
        output: PathBuf,
        /// The checkpoint to embed when writing an archive.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Verify every object a commit reaches. Exits non-zero, listing the damaged objects,
    /// when anything is missing or altered.
    Fsck {
        /// Also decrypt and decode every block (slower; checks keys and formats too).
        #[arg(long)]
        deep: bool,
    },
    /// Rotate the key-encryption key and rewrap every dataset key (no data is re-encrypted).
    RotateKeys,
    /// Destroy key-encryption key versions below --min-version (after a rotation).
    TrimKeys {
        #[arg(long)]
        min_version: u32,
    },
    /// Delete objects no commit reaches, once older than the grace period.
    Gc {
        /// Seconds an unreachable object is kept (protects pushes in progress).
        #[arg(long, default_value_t = 86_400)]
        grace_secs: u64,
        /// Count what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The provider, current version and versions of the key-encryption key.
    Status,
    /// Rotate the key-encryption key and rewrap every dataset key (no data is re-encrypted).
    Rotate,
    /// Destroy key-encryption key versions below --min-version (after a rotation).
    Trim {
        #[arg(long)]
        min_version: u32,
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
