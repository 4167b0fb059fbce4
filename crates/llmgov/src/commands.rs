//! What each command does: load configuration, open the store, wire the server.

use std::sync::Arc;
use std::time::Duration;

use llmgov_core::identity::throttle::ThrottleConfig;
use llmgov_core::identity::{CreateUserInput, IdentityConfig, IdentityService, Password, tokens};
use llmgov_core::ids::WorkspaceId;
use llmgov_core::metrics::MetricsConfig;
use llmgov_server::{AppState, ServerConfig};
use llmgov_store::PoolConfig;

use crate::audit_cli::{
    audit_verify, convert_export, load_checkpoint_key, spawn_checkpointer, verify_export_offline,
};
use crate::cli::{AdminCommand, AuditCommand, Cli, Command, KeysCommand, VaultCommand};
use crate::config::{Config, DatabaseFlags, FlagOverrides, LogFlags, ServerFlags};

pub(crate) type AnyError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(cli: Cli) -> Result<(), AnyError> {
    if let Command::Version = cli.command {
        println!("llmgov {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if let Command::Dataset(args) = cli.command {
        return crate::dataset_cli::run(args).await;
    }
    if let Command::Pii { command } = cli.command {
        return crate::pii_cli::run(command);
    }
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let flags = FlagOverrides {
        data_dir: cli.global.data_dir.clone(),
        server: listen.map(|listen| ServerFlags { listen }),
        database: cli
            .global
            .database_url
            .clone()
            .map(|url| DatabaseFlags { url }),
        log: cli
            .global
            .log_format
            .clone()
            .map(|format| LogFlags { format }),
    };
    let cfg = Config::load(cli.global.config.as_deref(), &flags)?;
    init_logging(&cfg);
    match cli.command {
        Command::Serve { demo, .. } => serve(cfg, demo).await,
        Command::Openapi => {
            println!("{}", llmgov_server::openapi_json());
            Ok(())
        }
        Command::Migrate => {
            let url = prepare_database(&cfg)?;
            llmgov_store::migrate(&url).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command } => admin(cfg, command).await,
        Command::Vault { command } => vault_command(cfg, command).await,
        Command::Keys { command } => match command {
            KeysCommand::Rotate => vault_command(cfg, VaultCommand::RotateKeys).await,
            KeysCommand::Trim { min_version } => {
                vault_command(cfg, VaultCommand::TrimKeys { min_version }).await
            }
            KeysCommand::Status => {
                let store = open_store(&cfg).await?;
                let vault = open_vault(&cfg, store).await?;
                let s = vault.keys().status().await?;
                println!("{}", serde_json::to_string_pretty(&s)?);
                Ok(())
            }
        },
        Command::Init => {
            let store = open_store(&cfg).await?;
            open_vault(&cfg, store).await?;
            println!(
                "initialised {}: database migrated, vault keys ({}) and object store ready",
                cfg.data_dir.display(),
                cfg.vault.key_provider
            );
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    export: Some(export),
                    checkpoint,
                    public_key,
                },
        } => verify_export_offline(&export, checkpoint.as_deref(), public_key.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { export: None, .. },
        } => audit_verify(cfg).await,
        Command::Audit {
            command:
                AuditCommand::Convert {
                    input,
                    output,
                    checkpoint,
                },
        } => convert_export(&input, &output, checkpoint.as_deref()),
        Command::Version | Command::Dataset(_) | Command::Pii { .. } => {
            unreachable!("handled above")
        }
    }
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LLMGOV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "pretty" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

/// Creates the data directory when the embedded database is used, and returns the URL.
fn prepare_database(cfg: &Config) -> Result<String, AnyError> {
    let url = cfg.database_url();
    if url.starts_with("sqlite:") && cfg.database.url.is_none() {
        std::fs::create_dir_all(&cfg.data_dir)?;
    }
    Ok(url)
}

async fn open_store(cfg: &Config) -> Result<Arc<dyn llmgov_core::store::Store>, AnyError> {
    let url = prepare_database(cfg)?;
    let pool = PoolConfig {
        max_connections: cfg.database.max_connections,
        user_cache_ttl: Duration::from_secs(cfg.database.user_cache_ttl_secs),
        ..Default::default()
    };
    Ok(llmgov_store::open(&url, &pool, true).await?)
}

fn identity_config(cfg: &Config) -> IdentityConfig {
    IdentityConfig {
        issuer: cfg.auth.issuer.clone(),
        audience: cfg.auth.audience.clone(),
        access_token_ttl: Duration::from_secs(cfg.auth.access_token_ttl_secs),
        refresh_token_ttl: Duration::from_secs(cfg.auth.refresh_token_ttl_secs),
        throttle: ThrottleConfig {
            window: Duration::from_secs(cfg.auth.failed_login_window_secs),
            max_failures_per_account: cfg.auth.max_failed_logins_per_account,
            max_failures_per_address: cfg.auth.max_failed_logins_per_address,
        },
    }
}

async fn serve(cfg: Config, demo: bool) -> Result<(), AnyError> {
    let store = open_store(&cfg).await?;
    // Keys first: a wrong passphrase or a missing HSM token stops the start before any
    // background work begins.
    let vault = open_vault(&cfg, store.clone()).await?;
    if let Some(b) = IdentityService::bootstrap(
        &*store,
        cfg.admin_email.as_deref(),
        cfg.admin_password.as_deref(),
    )
    .await?
    {
        print_bootstrap(&b.email, b.generated_password.as_deref());
    }
    let identity = Arc::new(IdentityService::new(store, identity_config(&cfg)).await?);
    let server_cfg = ServerConfig {
        body_limit: cfg.server.body_limit_bytes,
        request_timeout: Duration::from_secs(cfg.server.request_timeout_secs),
        trust_forwarded_for: cfg.server.trust_forwarded_for,
        ui_dir: llmgov_server::ui::locate(cfg.server.ui_dir.as_deref()),
    };
    match &server_cfg.ui_dir {
        Some(d) => tracing::info!(dir = %d.display(), "serving the web UI"),
        None => tracing::warn!(
            "no built web UI found (web/build); / will say how to build it (npm --prefix web ci && npm --prefix web run build)"
        ),
    }
    let signer = Arc::new(load_checkpoint_key(&cfg)?);
    tracing::info!(key_id = signer.key_id(), "audit checkpoint key loaded");
    let days = |d: u64| Duration::from_secs(d.max(1) * 86_400);
    let state = AppState::new(identity.clone(), signer.clone(), server_cfg).with_metrics_config(
        MetricsConfig {
            raw_retention: days(cfg.metrics.raw_retention_days),
            hourly_retention: days(cfg.metrics.hourly_retention_days),
            daily_retention: days(cfg.metrics.daily_retention_days),
            prices: cfg.metrics.prices.clone(),
        },
    );
    let state = state.with_vault(vault);
    if cfg.vault.gc_interval_secs > 0
        && let Some(v) = state.vault.clone()
    {
        let (every, grace) = (
            Duration::from_secs(cfg.vault.gc_interval_secs),
            Duration::from_secs(cfg.vault.gc_grace_secs),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match v.gc(grace, false).await {
                    Ok(r) => tracing::info!(
                        deleted = r.deleted,
                        bytes = r.deleted_bytes,
                        "vault garbage collection"
                    ),
                    Err(e) => tracing::error!(error = %e, "vault garbage collection failed"),
                }
            }
        });
    }
    let ev = &cfg.events;
    let state = state.with_events_config(
        llmgov_core::events::EventsConfig {
            retention: Duration::from_secs(ev.retention_hours.max(1) * 3600),
            points_retention: Duration::from_secs(ev.points_retention_minutes.max(1) * 60),
            buffer: ev.buffer.clamp(16, 1 << 20),
            poll: Duration::from_millis(ev.poll_interval_ms.max(10)),
            replay_limit: ev.replay_limit.clamp(1, 1_000_000),
        },
        llmgov_server::streams::StreamConfig {
            heartbeat: Duration::from_secs(ev.heartbeat_secs.max(1)),
            send_timeout: Duration::from_secs(ev.send_timeout_secs.max(1)),
            max_queued_bytes: ev.max_queued_mib.clamp(1, 4096) * 1024 * 1024,
        },
    );
    match &ev.nats_url {
        Some(url) => {
            let mut nats = llmgov_store::nats::NatsConfig::new(url.clone());
            nats.stream = ev.nats_stream.clone();
            nats.max_age = Duration::from_secs(ev.retention_hours.max(1) * 3600);
            llmgov_store::nats::start(nats, state.store.clone(), state.events.clone())
                .await
                .map_err(|e| format!("NATS: {e}"))?;
            tracing::info!("events carried through NATS JetStream");
        }
        None => {
            tokio::spawn(state.events.clone().run_local());
        }
    }
    tokio::spawn(state.events.clone().run_retention(Duration::from_secs(60)));
    tokio::spawn(
        state
            .metric_service
            .clone()
            .run_maintenance(Duration::from_secs(
                cfg.metrics.maintenance_interval_secs.max(1),
            )),
    );
    tokio::spawn(state.alerts.clone().run(Duration::from_secs(
        cfg.metrics.alert_evaluation_interval_secs.max(1),
    )));
    spawn_checkpointer(
        state.store.clone(),
        signer,
        Duration::from_secs(cfg.audit.checkpoint_interval_secs.max(1)),
        Duration::from_secs(cfg.audit.retention_days.max(1) * 86_400),
    );
    spawn_key_reloader(identity);
    llmgov_server::webhooks::spawn_outbox_dispatcher(&state, Duration::from_secs(5));
    let listener = tokio::net::TcpListener::bind(&cfg.server.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = state.store.backend(), "llmgov listening");
    println!(
        "llmgov {} listening on http://{addr} (API docs: http://{addr}/api/docs)",
        env!("CARGO_PKG_VERSION")
    );
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let store = state.store.clone();
    let server = tokio::spawn(llmgov_server::serve(
        listener,
        llmgov_server::app(state),
        async move {
            let _ = rx.await;
        },
    ));
    if demo {
        // Through the API of the server that has just started listening.
        let mut local = addr;
        if local.ip().is_unspecified() {
            local.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base = format!("http://{local}");
        tokio::spawn(async move {
            if let Err(e) = crate::demo::run(store, base).await {
                tracing::error!(error = %e, "demo data could not be made");
                eprintln!("demo data could not be made: {e}");
            }
        });
    }
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined??,
        Err(_) => tracing::warn!("grace period over; exiting with requests still in flight"),
    }
    Ok(())
}

fn print_bootstrap(email: &str, generated: Option<&str>) {
    println!("------------------------------------------------------------");
    println!("First start: created super admin {email}");
    match generated {
        Some(pw) => println!("Generated password (shown only once): {pw}"),
        None => println!("Password: the one given in LLMGOV_ADMIN_PASSWORD"),
    }
    println!("------------------------------------------------------------");
}

/// Signing keys may be rotated by another instance; pick them up regularly.
fn spawn_key_reloader(identity: Arc<IdentityService>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = identity.reload_keys().await {
                tracing::warn!(error = %e, "could not reload signing keys");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn generated_password() -> String {
    loop {
        let candidate = format!("Lg-{}", tokens::random_token(18));
        if Password::parse(&candidate).is_ok() {
            return candidate;
        }
    }
}

async fn admin(cfg: Config, cmd: AdminCommand) -> Result<(), AnyError> {
    let store = open_store(&cfg).await?;
    if IdentityService::bootstrap(
        &*store,
        cfg.admin_email.as_deref(),
        cfg.admin_password.as_deref(),
    )
    .await?
    .inspect(|b| print_bootstrap(&b.email, b.generated_password.as_deref()))
    .is_some()
    {
        tracing::info!("database bootstrapped");
    }
    match cmd {
        AdminCommand::CreateUser {
            email,
            username,
            password,
            roles,
            workspace_id,
        } => {
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (generated_password(), true),
            };
            let input = CreateUserInput {
                email: email.clone(),
                username,
                password: password.clone(),
                roles,
                workspace_id: workspace_id.map(WorkspaceId),
                ..Default::default()
            };
            let id = IdentityService::create_user_as_operator(&*store, input).await?;
            println!("created user {email} ({id})");
            if generated {
                println!("Generated password (shown only once): {password}");
            }
        }
        AdminCommand::ResetPassword { email, password } => {
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (generated_password(), true),
            };
            IdentityService::reset_password(&*store, &email, &password).await?;
            println!("password of {email} reset; existing sessions were ended");
            if generated {
                println!("Generated password (shown only once): {password}");
            }
        }
    }
    Ok(())
}

/// The vault's passphrase: configured, from a file, or (first start of an embedded setup)
/// generated into `<data_dir>/vault/passphrase`.
fn vault_passphrase(cfg: &Config, key_file: &std::path::Path) -> Result<String, AnyError> {
    if let Some(p) = &cfg.vault.passphrase {
        return Ok(p.clone());
    }
    let file = cfg
        .vault
        .passphrase_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("vault").join("passphrase"));
    match std::fs::read_to_string(&file) {
        Ok(p) => Ok(p.trim_end_matches(['\n', '\r']).to_string()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !key_file.exists()
                && cfg.vault.passphrase_file.is_none() =>
        {
            let mut raw = [0u8; 24];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| "no randomness")?;
            let p = llmgov_core::hex::encode(&raw);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            std::io::Write::write_all(&mut o.open(&file)?, p.as_bytes())?;
            tracing::warn!(file = %file.display(), "generated a vault passphrase next to the data; set LLMGOV_VAULT__PASSPHRASE (or vault.passphrase_file) in production");
            Ok(p)
        }
        Err(e) => Err(format!(
            "vault passphrase: set LLMGOV_VAULT__PASSPHRASE or vault.passphrase_file ({}: {e})",
            file.display()
        )
        .into()),
    }
}

/// Opens (or, on first start, creates) the vault's key file and object store.
async fn open_vault(
    cfg: &Config,
    store: Arc<dyn llmgov_core::store::Store>,
) -> Result<llmgov_core::vault::VaultService, AnyError> {
    use llmgov_core::vault::keys::{KdfParams, KeyProvider, LocalKeyProvider};
    let keys: Arc<dyn KeyProvider> = match cfg.vault.key_provider.as_str() {
        "local" => {
            let key_file = cfg
                .vault
                .key_file
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("vault").join("kek.json"));
            let passphrase = vault_passphrase(cfg, &key_file)?;
            Arc::new(
                if key_file.exists() {
                    LocalKeyProvider::open(&key_file, &passphrase)
                } else {
                    tracing::info!(file = %key_file.display(), "creating the vault key file");
                    LocalKeyProvider::create(&key_file, &passphrase, KdfParams::default())
                }
                .map_err(|e| format!("vault keys: {e}"))?,
            )
        }
        "pkcs11" => {
            let need = |v: &Option<String>, name: &str| {
                v.clone()
                    .ok_or_else(|| format!("vault.key_provider = \"pkcs11\" needs vault.{name}"))
            };
            let hsm = llmgov_store::pkcs11::Pkcs11Config {
                module: cfg
                    .vault
                    .pkcs11_module
                    .clone()
                    .ok_or("vault.key_provider = \"pkcs11\" needs vault.pkcs11_module")?,
                token_label: need(&cfg.vault.pkcs11_token, "pkcs11_token")?,
                pin: need(&cfg.vault.pkcs11_pin, "pkcs11_pin")?,
                key_label: cfg.vault.pkcs11_key_label.clone(),
            };
            Arc::new(
                llmgov_store::pkcs11::Pkcs11KeyProvider::open(&hsm)
                    .map_err(|e| format!("vault keys: {e}"))?,
            )
        }
        other => {
            return Err(
                format!("vault.key_provider must be local or pkcs11, not {other:?}").into(),
            );
        }
    };
    let objects = open_objects(cfg)?;
    objects
        .check()
        .await
        .map_err(|e| format!("vault objects: {e}"))?;
    tracing::info!(location = objects.location(), "vault objects");
    let mut vc = llmgov_core::vault::VaultConfig::default();
    vc.ingest.block_bytes = cfg.vault.block_kib.clamp(16, 64 * 1024) * 1024;
    vc.ingest.zstd_level = cfg.vault.zstd_level.clamp(-7, 19);
    vc.max_record_bytes = cfg.vault.max_record_mib.clamp(1, 1024) << 20;
    vc.dek_cache_ttl = Duration::from_secs(cfg.vault.dek_cache_ttl_secs);
    let spool = cfg
        .vault
        .spool_dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("vault").join("spool"));
    std::fs::create_dir_all(&spool).map_err(|e| format!("{}: {e}", spool.display()))?;
    vc.spool_dir = Some(spool);
    let vault_store: Arc<dyn llmgov_core::vault::store::VaultStore> = store;
    Ok(llmgov_core::vault::VaultService::new(
        vault_store,
        Arc::new(objects),
        keys,
        vc,
    ))
}

async fn vault_command(cfg: Config, command: VaultCommand) -> Result<(), AnyError> {
    let store = open_store(&cfg).await?;
    let vault = open_vault(&cfg, store.clone()).await?;
    match command {
        VaultCommand::Fsck { deep } => {
            let r = vault.fsck(deep).await?;
            println!(
                "checked {} datasets, {} commits, {} manifests, {} blocks ({} bytes)",
                r.datasets, r.commits, r.manifests, r.blocks, r.bytes
            );
            if r.damaged.is_empty() {
                println!("every reachable object verifies");
                return Ok(());
            }
            for d in &r.damaged {
                println!(
                    "DAMAGED {} (dataset {}): {}",
                    d.object, d.dataset, d.problem
                );
            }
            Err(format!("{} damaged object(s)", r.damaged.len()).into())
        }
        VaultCommand::RotateKeys => {
            let ws = store
                .system_workspace()
                .await?
                .ok_or("the database has no workspace yet: start the server once")?;
            let r = vault
                .rotate_keys(ws, &llmgov_core::audit::RequestContext::system())
                .await?;
            println!(
                "key-encryption key {} is current (was {}); {} dataset keys rewrapped",
                r.current_version, r.previous_version, r.rewrapped
            );
            Ok(())
        }
        VaultCommand::TrimKeys { min_version } => {
            let ws = store
                .system_workspace()
                .await?
                .ok_or("the database has no workspace yet: start the server once")?;
            let removed = vault
                .trim_keys(
                    ws,
                    &llmgov_core::audit::RequestContext::system(),
                    min_version,
                )
                .await?;
            println!("destroyed key-encryption key versions {removed:?}");
            Ok(())
        }
        VaultCommand::Gc {
            grace_secs,
            dry_run,
        } => {
            let r = vault.gc(Duration::from_secs(grace_secs), dry_run).await?;
            println!(
                "{} reachable objects; {} {} unreachable objects ({} bytes); {} younger than the grace period kept",
                r.reachable,
                if dry_run { "would delete" } else { "deleted" },
                r.deleted,
                r.deleted_bytes,
                r.kept_young
            );
            Ok(())
        }
    }
}

/// The object store of dataset bytes: `[storage] backend = "local"` (default) or `"s3"`.
fn open_objects(cfg: &Config) -> Result<llmgov_store::objects::Objects, AnyError> {
    use llmgov_store::objects::{Objects, S3Config};
    let st = &cfg.storage;
    match st.backend.as_str() {
        "local" => {
            let dir = cfg
                .vault
                .objects_dir
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("objects"));
            Ok(Objects::local(&dir).map_err(|e| format!("vault objects: {e}"))?)
        }
        "s3" => {
            let bucket = st
                .bucket
                .clone()
                .ok_or("storage.backend = \"s3\" needs storage.bucket")?;
            Ok(Objects::s3(&S3Config {
                endpoint: st.endpoint.clone(),
                bucket,
                region: st.region.clone(),
                access_key_id: st.access_key_id.clone(),
                secret_access_key: st.secret_access_key.clone(),
                session_token: st.session_token.clone(),
                prefix: st.prefix.clone(),
                virtual_hosted_style: st.virtual_hosted_style,
            })
            .map_err(|e| format!("storage: {e}"))?)
        }
        other => Err(format!("storage.backend must be local or s3, not {other:?}").into()),
    }
}
