//! Configuration: defaults < `llmgov.toml` < `LLMGOV_*` environment (nested with `__`) <
//! command-line flags.

// figment's error is large but rare (once, at start-up), and its Jail test API returns it.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and (later) dataset bytes live.
    pub data_dir: PathBuf,
    /// First-start super admin; a password is generated and printed once when unset.
    pub admin_email: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub admin_password: Option<String>,
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub auth: AuthSection,
    pub audit: AuditSection,
    pub metrics: MetricsSection,
    pub events: EventsSection,
    pub vault: VaultSection,
    pub storage: StorageSection,
    pub log: LogSection,
}

/// Where dataset bytes (encrypted blocks and manifests) are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `local` (files under `vault.objects_dir`) or `s3`.
    pub backend: String,
    /// S3 endpoint; unset: AWS. `http://` endpoints are allowed (a local S3 server).
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: String,
    /// Unset credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...
    #[serde(default, deserialize_with = "opt_text")]
    pub access_key_id: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub secret_access_key: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub session_token: Option<String>,
    /// Key prefix inside the bucket (several deployments can share one bucket).
    pub prefix: Option<String>,
    /// Virtual-hosted-style requests (`https://BUCKET.endpoint/KEY`).
    pub virtual_hosted_style: bool,
}

/// A text setting that the environment may give as digits (`LLMGOV_VAULT__PKCS11_PIN=1234`
/// reaches us as a number).
fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        I(i64),
        U(u64),
        F(f64),
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
        Text::S(s) => s,
        Text::I(i) => i.to_string(),
        Text::U(u) => u.to_string(),
        Text::F(f) => f.to_string(),
    }))
}

/// The Data Vault: where dataset bytes live and how their keys are protected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Where key-encryption keys live: `local` (a key file sealed by the passphrase) or
    /// `pkcs11` (an HSM token).
    pub key_provider: String,
    /// PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`), token label and user PIN.
    pub pkcs11_module: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_text")]
    pub pkcs11_token: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub pkcs11_pin: Option<String>,
    /// Prefix of the KEK labels in the token (`<prefix>-v<version>`).
    pub pkcs11_key_label: String,
    /// Directory of the local object store. Default: `<data_dir>/objects`.
    pub objects_dir: Option<PathBuf>,
    /// Where Parquet uploads are spooled while they are read. Default: `<data_dir>/vault/spool`.
    pub spool_dir: Option<PathBuf>,
    /// Key-encryption keys sealed with the passphrase. Default: `<data_dir>/vault/kek.json`.
    pub key_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_text")]
    /// Passphrase sealing the key file (at least 12 characters). Prefer the environment
    /// (`LLMGOV_VAULT__PASSPHRASE`) or `passphrase_file` to a config file.
    pub passphrase: Option<String>,
    /// File holding the passphrase. When neither is set, a random passphrase is generated
    /// into `<data_dir>/vault/passphrase` on first start (fine for a laptop, not production).
    pub passphrase_file: Option<PathBuf>,
    /// KiB of records per stored block.
    pub block_kib: usize,
    /// zstd level of stored blocks (negative: faster, larger).
    pub zstd_level: i32,
    /// Largest record (JSON line) accepted, in MiB.
    pub max_record_mib: usize,
    /// Seconds an unwrapped data key stays cached.
    pub dek_cache_ttl_secs: u64,
    /// Seconds between garbage collections of unreachable objects (0: never).
    pub gc_interval_secs: u64,
    /// Seconds an unreachable object is kept before collection (protects pushes in progress).
    pub gc_grace_secs: u64,
}

/// Real-time streams (WebSocket/SSE) and the event bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    /// NATS server (e.g. `nats://127.0.0.1:4222`) to carry events between instances through
    /// JetStream; unset: events go from the database to this instance's clients only.
    pub nats_url: Option<String>,
    /// JetStream stream that carries the events.
    pub nats_stream: String,
    /// Hours events are kept for clients to resume from.
    pub retention_hours: u64,
    /// Minutes `metrics.points` events are kept for clients to resume from.
    pub points_retention_minutes: u64,
    /// Events buffered per instance; a client further behind is dropped.
    pub buffer: usize,
    /// Milliseconds between looks for events other instances committed.
    pub poll_interval_ms: u64,
    /// Most events replayed to one subscription.
    pub replay_limit: usize,
    /// Seconds between heartbeats on a stream.
    pub heartbeat_secs: u64,
    /// Seconds a send may block before the client is dropped.
    pub send_timeout_secs: u64,
    /// MiB queued for one WebSocket client before it is dropped as too slow.
    pub max_queued_mib: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Raw points older than this are dropped (seed: 90 days).
    pub raw_retention_days: u64,
    /// Hourly rollups older than this are dropped (seed: 1 year).
    pub hourly_retention_days: u64,
    /// Daily rollups older than this are dropped.
    pub daily_retention_days: u64,
    /// Seconds between rollup compaction and retention runs.
    pub maintenance_interval_secs: u64,
    /// Seconds between evaluations of every alert rule (they also run within a second of
    /// points arriving).
    pub alert_evaluation_interval_secs: u64,
    /// Model prices (US dollars per million tokens) for the cost of GenAI calls received over
    /// OTLP; the longest matching model prefix wins.
    pub prices: Vec<llmgov_core::metrics::genai::ModelPrice>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Ed25519 key (PKCS#8 DER) that signs checkpoints; created on first start. Every
    /// instance of one deployment must use the same file. Default: `<data_dir>/audit-checkpoint.key`.
    pub checkpoint_key_file: Option<PathBuf>,
    /// Seconds between automatic checkpoints of logs that grew.
    pub checkpoint_interval_secs: u64,
    /// Entries older than this are deleted, up to the latest checkpoint (default 7 years).
    pub retention_days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub trust_forwarded_for: bool,
    /// Seconds to let in-flight requests finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// The built web UI; unset: `web/build` under the working directory, then `web`
    /// beside the executable.
    pub ui_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` or `postgres://...`; default: `sqlite://<data_dir>/llmgov.db`.
    pub url: Option<String>,
    pub max_connections: u32,
    /// Longest a cached user record may be served; 0 turns the cache off. Writes invalidate
    /// cached users at once (across instances on PostgreSQL), so this only bounds staleness
    /// if an invalidation is lost.
    pub user_cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub max_failed_logins_per_account: usize,
    pub max_failed_logins_per_address: usize,
    pub failed_login_window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `llmgov=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./llmgov-data"),
            admin_email: None,
            admin_password: None,
            server: ServerSection {
                listen: "127.0.0.1:8080".into(),
                body_limit_bytes: 1024 * 1024,
                request_timeout_secs: 30,
                trust_forwarded_for: false,
                shutdown_grace_secs: 20,
                ui_dir: None,
            },
            database: DatabaseSection {
                url: None,
                max_connections: 16,
                user_cache_ttl_secs: 5,
            },
            auth: AuthSection {
                issuer: "llmgov".into(),
                audience: "llmgov-api".into(),
                access_token_ttl_secs: 900,
                refresh_token_ttl_secs: 7 * 24 * 3600,
                max_failed_logins_per_account: 5,
                max_failed_logins_per_address: 30,
                failed_login_window_secs: 900,
            },
            audit: AuditSection {
                checkpoint_key_file: None,
                checkpoint_interval_secs: 300,
                retention_days: 2557,
            },
            metrics: MetricsSection {
                raw_retention_days: 90,
                hourly_retention_days: 365,
                daily_retention_days: 1825,
                maintenance_interval_secs: 10,
                alert_evaluation_interval_secs: 15,
                prices: llmgov_core::metrics::genai::default_prices(),
            },
            events: EventsSection {
                nats_url: None,
                nats_stream: "LLMGOV_EVENTS".into(),
                retention_hours: 24,
                points_retention_minutes: 60,
                buffer: 4096,
                poll_interval_ms: 1000,
                replay_limit: 10_000,
                heartbeat_secs: 15,
                send_timeout_secs: 10,
                max_queued_mib: 16,
            },
            vault: VaultSection {
                key_provider: "local".into(),
                pkcs11_module: None,
                pkcs11_token: None,
                pkcs11_pin: None,
                pkcs11_key_label: "llmgov-kek".into(),
                objects_dir: None,
                spool_dir: None,
                key_file: None,
                passphrase: None,
                passphrase_file: None,
                block_kib: 1024,
                zstd_level: 1,
                max_record_mib: 16,
                dek_cache_ttl_secs: 300,
                gc_interval_secs: 3600,
                gc_grace_secs: 86_400,
            },
            storage: StorageSection {
                backend: "local".into(),
                endpoint: None,
                bucket: None,
                region: "us-east-1".into(),
                access_key_id: None,
                secret_access_key: None,
                session_token: None,
                prefix: None,
                virtual_hosted_style: false,
            },
            log: LogSection {
                format: "json".into(),
                level: "info".into(),
            },
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFlags>,
}

#[derive(Debug, Default, Serialize)]
pub struct ServerFlags {
    pub listen: String,
}

#[derive(Debug, Default, Serialize)]
pub struct DatabaseFlags {
    pub url: String,
}

#[derive(Debug, Default, Serialize)]
pub struct LogFlags {
    pub format: String,
}

impl Config {
    pub fn load(
        file: Option<&std::path::Path>,
        flags: &FlagOverrides,
    ) -> Result<Self, figment::Error> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => fig = fig.merge(Toml::file_exact(f)),
            None => fig = fig.merge(Toml::file("llmgov.toml")),
        }
        let mut c: Config = fig
            .merge(Self::env())
            .merge(Serialized::defaults(flags))
            .extract()?;
        // Secrets are taken from the environment byte for byte: the generic reader would
        // turn a PIN such as `0123` into the number 123.
        let raw = |k: &str| std::env::var(k).ok();
        if let Some(v) = raw("LLMGOV_ADMIN_PASSWORD") {
            c.admin_password = Some(v);
        }
        if let Some(v) = raw("LLMGOV_VAULT__PASSPHRASE") {
            c.vault.passphrase = Some(v);
        }
        if let Some(v) = raw("LLMGOV_VAULT__PKCS11_PIN") {
            c.vault.pkcs11_pin = Some(v);
        }
        if let Some(v) = raw("LLMGOV_VAULT__PKCS11_TOKEN") {
            c.vault.pkcs11_token = Some(v);
        }
        if let Some(v) = raw("LLMGOV_STORAGE__SECRET_ACCESS_KEY") {
            c.storage.secret_access_key = Some(v);
        }
        if let Some(v) = raw("LLMGOV_STORAGE__ACCESS_KEY_ID") {
            c.storage.access_key_id = Some(v);
        }
        Ok(c)
    }

    /// `LLMGOV_*` variables that name configuration keys. Others with the prefix (such as
    /// `LLMGOV_LOG` or test settings) belong to other readers and are ignored here, while a
    /// misspelt key inside a known section is still an error.
    fn env() -> Env {
        const KEYS: &[&str] = &["data_dir", "admin_email", "admin_password"];
        const SECTIONS: &[&str] = &[
            "server", "database", "auth", "audit", "metrics", "events", "vault", "storage", "log",
        ];
        Env::prefixed("LLMGOV_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                match k.split_once("__") {
                    Some((section, _)) => SECTIONS.contains(&section),
                    None => KEYS.contains(&k.as_str()),
                }
            })
            .split("__")
    }

    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("llmgov.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "llmgov.toml",
                "[server]\nlisten = \"0.0.0.0:1\"\n[database]\nmax_connections = 3\n",
            )?;
            let c = Config::load(None, &FlagOverrides::default())?;
            assert_eq!(c.server.listen, "0.0.0.0:1");
            jail.set_env("LLMGOV_SERVER__LISTEN", "0.0.0.0:2");
            jail.set_env("LLMGOV_DATABASE__URL", "postgres://x/y");
            jail.set_env("LLMGOV_TEST_PG_URL", "ignored: not a configuration key");
            jail.set_env("LLMGOV_LOG", "debug");
            // Every section takes overrides from the environment.
            jail.set_env("LLMGOV_METRICS__RAW_RETENTION_DAYS", "7");
            jail.set_env("LLMGOV_EVENTS__NATS_URL", "nats://127.0.0.1:4222");
            jail.set_env("LLMGOV_VAULT__KEY_PROVIDER", "pkcs11");
            jail.set_env("LLMGOV_VAULT__PKCS11_PIN", "0123");
            let c = Config::load(None, &FlagOverrides::default())?;
            assert_eq!(c.server.listen, "0.0.0.0:2");
            assert_eq!(c.metrics.raw_retention_days, 7);
            assert_eq!(c.events.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
            assert_eq!(c.vault.key_provider, "pkcs11");
            assert_eq!(
                c.vault.pkcs11_pin.as_deref(),
                Some("0123"),
                "digits stay text"
            );
            assert_eq!(c.database.max_connections, 3);
            assert_eq!(c.database_url(), "postgres://x/y");
            let flags = FlagOverrides {
                server: Some(ServerFlags {
                    listen: "0.0.0.0:3".into(),
                }),
                ..Default::default()
            };
            assert_eq!(Config::load(None, &flags)?.server.listen, "0.0.0.0:3");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("llmgov.toml", "[server]\nlisen = \"typo\"\n")?;
            assert!(Config::load(None, &FlagOverrides::default()).is_err());
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("LLMGOV_SERVER__LISEN", "typo");
            assert!(Config::load(None, &FlagOverrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let c = Config::default();
        assert_eq!(c.database_url(), "sqlite://./llmgov-data/llmgov.db");
    }
}
