//! The PII engine in the platform: a workspace's detection settings and anonymization
//! profiles, scanning and anonymizing text and records, the token vault (detokenization
//! needs `pii:read` and is audited), and the findings of every dataset version.
//!
//! The scanner itself is the pure `llmgov-pii` crate; this module adds what needs storage,
//! keys and permissions.

pub mod dataset;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use llmgov_pii::anonymize::{
    Anonymized, Anonymizer, JsonReport, Keys, Profile, SurrogateKind, TokenRecord, find_surrogates,
};
use llmgov_pii::{Entity, EntityType, ScanConfig, Scanner};
use serde::{Deserialize, Serialize};

use crate::access::{Action, Permission, Resource};
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::{DatasetId, WorkspaceId};
use crate::store::Store;
use crate::time::Timestamp;
use crate::vault::VaultService;
use crate::{CoreError, Result};

pub use dataset::{DatasetPiiReport, DerivedDataset, PiiSample};

/// A workspace's PII settings: detection and named anonymization profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PiiSettings {
    /// Enabled types, thresholds, custom recognizers, allow list.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub scan: ScanConfig,
    /// Anonymization profiles by name (`operators`, `default`, `fields`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub profiles: BTreeMap<String, Profile>,
}

/// Settings as stored: `version` 0 is the built-in default (never saved).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredSettings {
    pub settings: PiiSettings,
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub updated_at: Option<Timestamp>,
}

/// A token vault entry: the value sealed with the workspace's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedToken {
    pub token: String,
    pub entity_type: String,
    pub sealed: String,
}

/// Findings of one dataset version as stored.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub settings_version: i64,
    pub report: serde_json::Value,
    pub scanned_at: Timestamp,
}

#[async_trait]
pub trait PiiStore: Send + Sync {
    async fn pii_settings(&self, ws: WorkspaceId) -> Result<Option<StoredSettings>>;
    /// Saves settings as version `expected + 1` if the stored version is still `expected`
    /// (`PII_SETTINGS_CHANGED` conflict otherwise), with the audit entry.
    async fn put_pii_settings(
        &self,
        ws: WorkspaceId,
        settings: &PiiSettings,
        expected: i64,
        audit: AuditDraft,
    ) -> Result<StoredSettings>;
    /// Stores tokens not yet in the vault, with the audit entry (one transaction).
    async fn put_tokens(
        &self,
        ws: WorkspaceId,
        tokens: &[SealedToken],
        audit: AuditDraft,
    ) -> Result<()>;
    async fn get_tokens(&self, ws: WorkspaceId, tokens: &[String]) -> Result<Vec<SealedToken>>;
    async fn dataset_pii(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        commit: &str,
    ) -> Result<Option<StoredReport>>;
    /// Replaces the findings of a version.
    async fn put_dataset_pii(
        &self,
        ws: WorkspaceId,
        ds: DatasetId,
        commit: &str,
        settings_version: i64,
        report: &serde_json::Value,
    ) -> Result<()>;
}

/// Limits of one request.
pub const MAX_TEXTS: usize = 1000;
pub const MAX_PROFILES: usize = 50;

pub(crate) struct Compiled {
    version: i64,
    settings: PiiSettings,
    pub(crate) scanner: Arc<Scanner>,
}

/// Scans, anonymizes and detokenizes within the caller's workspace.
pub struct PiiService {
    store: Arc<dyn Store>,
    vault: Option<Arc<VaultService>>,
    compiled: Mutex<HashMap<WorkspaceId, Arc<Compiled>>>,
    /// The scanner of workspaces without settings (compiled once).
    default: Arc<Scanner>,
}

fn need(p: &Principal, a: Action) -> Result<()> {
    p.require(Permission::new(Resource::Pii, a))
}

/// Overrides of one scan request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScanOptions {
    pub types: Option<Vec<EntityType>>,
    pub min_score: Option<f32>,
}

/// Which profile an anonymization uses.
#[derive(Debug, Clone)]
pub enum ProfileChoice {
    /// A profile of the workspace's settings.
    Named(String),
    Inline(Profile),
}

/// The result of detokenizing a text.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detokenized {
    pub text: String,
    /// Tokens and encrypted values restored.
    pub restored: u64,
    /// Surrogates left as they were: tokens not in this workspace's vault, values
    /// encrypted with another key or altered.
    pub unknown: u64,
}

/// The value behind one token.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenValue {
    pub token: String,
    #[serde(rename = "type")]
    pub entity_type: Option<String>,
    /// `null` for a token this workspace does not hold.
    pub value: Option<String>,
}

impl PiiService {
    pub fn new(store: Arc<dyn Store>, vault: Option<Arc<VaultService>>) -> Self {
        Self {
            store,
            vault,
            compiled: Mutex::new(HashMap::new()),
            default: Arc::new(Scanner::default()),
        }
    }

    /// The built-in scanner (no workspace settings): for the policy engine's `llmgov.pii`.
    pub fn default_scanner(&self) -> &Arc<Scanner> {
        &self.default
    }

    async fn compiled(&self, ws: WorkspaceId) -> Result<Arc<Compiled>> {
        let stored = self.store.pii_settings(ws).await?;
        let version = stored.as_ref().map_or(0, |s| s.version);
        if let Some(c) = self.compiled.lock().expect("pii cache").get(&ws)
            && c.version == version
        {
            return Ok(Arc::clone(c));
        }
        let (settings, scanner) = match stored {
            None => (PiiSettings::default(), Arc::clone(&self.default)),
            Some(s) => {
                let scanner = Scanner::new(s.settings.scan.clone())
                    .map_err(|e| CoreError::internal(format!("stored PII settings: {e}")))?;
                (s.settings, Arc::new(scanner))
            }
        };
        let c = Arc::new(Compiled {
            version,
            settings,
            scanner,
        });
        self.compiled
            .lock()
            .expect("pii cache")
            .insert(ws, Arc::clone(&c));
        Ok(c)
    }

    /// The workspace's scanner and settings version (for the vault's scans).
    pub async fn scanner(&self, ws: WorkspaceId) -> Result<(Arc<Scanner>, i64)> {
        let c = self.compiled(ws).await?;
        Ok((Arc::clone(&c.scanner), c.version))
    }

    pub(crate) async fn keys(&self, ws: WorkspaceId) -> Result<Keys> {
        let vault = self.vault.as_ref().ok_or_else(|| {
            CoreError::Unavailable(
                "keyed PII operators need the data vault's keys, which this instance does not serve"
                    .into(),
            )
        })?;
        let key = vault.workspace_key(ws).await?;
        Ok(Keys::derive(key.raw_bytes()))
    }

    pub async fn settings(&self, p: &Principal) -> Result<StoredSettings> {
        need(p, Action::Execute)?;
        Ok(self
            .store
            .pii_settings(p.workspace_id)
            .await?
            .unwrap_or(StoredSettings {
                settings: PiiSettings::default(),
                version: 0,
                updated_at: None,
            }))
    }

    /// Checks settings without saving them.
    pub fn validate(settings: &PiiSettings) -> Result<()> {
        Scanner::new(settings.scan.clone())
            .map_err(|e| CoreError::invalid(format!("scan.{}", e.field), e.message.clone()))?;
        if settings.profiles.len() > MAX_PROFILES {
            return Err(CoreError::invalid(
                "profiles",
                format!("at most {MAX_PROFILES} profiles"),
            ));
        }
        for (name, profile) in &settings.profiles {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(CoreError::invalid(
                    "profiles",
                    format!(
                        "profile names have 1 to 64 letters, digits, '-' or '_': '{}'",
                        name.chars().take(64).collect::<String>()
                    ),
                ));
            }
            profile.validate().map_err(|e| {
                CoreError::invalid(format!("profiles.{name}.{}", e.field), e.message)
            })?;
        }
        Ok(())
    }

    /// Replaces the workspace's settings; `expected` is the version the caller read
    /// (optimistic concurrency). Audited as `pii.settings.update`.
    pub async fn put_settings(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        settings: PiiSettings,
        expected: Option<i64>,
    ) -> Result<StoredSettings> {
        need(p, Action::Update)?;
        Self::validate(&settings)?;
        let current = self
            .store
            .pii_settings(p.workspace_id)
            .await?
            .map_or(0, |s| s.version);
        let expected = expected.unwrap_or(current);
        let audit = AuditDraft::new(p.workspace_id, ctx, "pii.settings.update", "settings")
            .resource("pii_settings", p.workspace_id)
            .details(serde_json::json!({
                "from_version": expected,
                "types": settings.scan.types,
                "recognizers": settings.scan.recognizers.iter().map(|r| &r.name).collect::<Vec<_>>(),
                "allow_list": settings.scan.allow_list.len(),
                "profiles": settings.profiles.keys().collect::<Vec<_>>(),
            }));
        self.store
            .put_pii_settings(p.workspace_id, &settings, expected, audit)
            .await
    }

    /// Scans texts with the workspace's settings (narrowed by `opts`).
    pub async fn scan(
        &self,
        p: &Principal,
        texts: &[String],
        opts: &ScanOptions,
    ) -> Result<Vec<Vec<Entity>>> {
        need(p, Action::Execute)?;
        check_count(texts.len())?;
        let c = self.compiled(p.workspace_id).await?;
        let scanner = if opts.types.is_some() || opts.min_score.is_some() {
            let mut cfg = c.settings.scan.clone();
            if let Some(t) = &opts.types {
                cfg.types = t.clone();
            }
            if let Some(m) = opts.min_score {
                cfg.min_score = m;
            }
            Arc::new(Scanner::new(cfg).map_err(|e| CoreError::invalid(e.field, e.message))?)
        } else {
            Arc::clone(&c.scanner)
        };
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || texts.iter().map(|t| scanner.scan(t)).collect())
            .await
            .map_err(CoreError::internal)
    }

    async fn profile(
        &self,
        ws: WorkspaceId,
        choice: &ProfileChoice,
    ) -> Result<(Profile, Arc<Compiled>)> {
        let c = self.compiled(ws).await?;
        let profile = match choice {
            ProfileChoice::Inline(p) => {
                p.validate()
                    .map_err(|e| CoreError::invalid(format!("profile.{}", e.field), e.message))?;
                p.clone()
            }
            ProfileChoice::Named(name) => c
                .settings
                .profiles
                .get(name)
                .cloned()
                .ok_or(CoreError::not_found("anonymization profile"))?,
        };
        Ok((profile, c))
    }

    /// A profile, the workspace's compiled settings, and its keys if the profile needs them.
    pub(crate) async fn prepared(
        &self,
        ws: WorkspaceId,
        choice: &ProfileChoice,
    ) -> Result<(Profile, Arc<Compiled>, Option<Keys>)> {
        let (profile, c) = self.profile(ws, choice).await?;
        let keys = if needs_keys(&profile) {
            Some(self.keys(ws).await?)
        } else {
            None
        };
        Ok((profile, c, keys))
    }

    /// Anonymizes texts: each is scanned with the workspace's settings and its entities
    /// go through the profile's operators. Tokens minted are sealed into the token vault
    /// (audited as `pii.tokenize`, with counts, never values).
    pub async fn anonymize_texts(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        texts: Vec<String>,
        choice: &ProfileChoice,
        scope: &str,
    ) -> Result<Vec<Anonymized>> {
        need(p, Action::Execute)?;
        check_count(texts.len())?;
        let (profile, c, keys) = self.prepared(p.workspace_id, choice).await?;
        let scope = scope.to_owned();
        let (out, tokens, keys) = tokio::task::spawn_blocking(move || {
            let a = Anonymizer::new(&profile, keys.as_ref(), &scope)
                .map_err(|e| CoreError::invalid("profile", e.to_string()))?;
            let mut tokens = vec![];
            let out: Vec<Anonymized> = texts
                .iter()
                .map(|t| a.scan_text(&c.scanner, t, &mut tokens))
                .collect();
            Ok::<_, CoreError>((out, tokens, keys))
        })
        .await
        .map_err(CoreError::internal)??;
        self.keep_tokens(p, ctx, keys.as_ref(), tokens).await?;
        Ok(out)
    }

    /// Anonymizes structured records (JSON): field rules first, then every other string
    /// is scanned.
    pub async fn anonymize_records(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        records: Vec<serde_json::Value>,
        choice: &ProfileChoice,
        scope: &str,
    ) -> Result<(Vec<serde_json::Value>, BTreeMap<String, u64>)> {
        need(p, Action::Execute)?;
        check_count(records.len())?;
        let (profile, c, keys) = self.prepared(p.workspace_id, choice).await?;
        let scope = scope.to_owned();
        let (records, report, keys) = tokio::task::spawn_blocking(move || {
            let a = Anonymizer::new(&profile, keys.as_ref(), &scope)
                .map_err(|e| CoreError::invalid("profile", e.to_string()))?;
            let mut report = JsonReport::default();
            let mut records = records;
            for r in records.iter_mut() {
                a.json(&c.scanner, r, &mut report);
            }
            Ok::<_, CoreError>((records, report, keys))
        })
        .await
        .map_err(CoreError::internal)??;
        self.keep_tokens(p, ctx, keys.as_ref(), report.tokens)
            .await?;
        Ok((records, report.replaced))
    }

    /// Masks the personal data of records the caller may already read: every finding is
    /// replaced by its type (`<EMAIL_ADDRESS>`), with the workspace's detection settings.
    /// Needs no PII permission, because it only takes away what the caller would see, and
    /// it mints no tokens and uses no keys. Serves previews for users without `pii:read`.
    pub async fn mask_records(
        &self,
        p: &Principal,
        records: Vec<serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>> {
        let profile = Profile {
            operators: BTreeMap::new(),
            default: llmgov_pii::anonymize::Operator::Replace { with: None },
            fields: BTreeMap::new(),
        };
        let (profile, c) = self
            .profile(p.workspace_id, &ProfileChoice::Inline(profile))
            .await?;
        tokio::task::spawn_blocking(move || {
            let a = Anonymizer::new(&profile, None, "")
                .map_err(|e| CoreError::invalid("profile", e.to_string()))?;
            let mut report = JsonReport::default();
            let mut records = records;
            for r in records.iter_mut() {
                a.json(&c.scanner, r, &mut report);
            }
            Ok(records)
        })
        .await
        .map_err(CoreError::internal)?
    }

    pub(crate) async fn keep_tokens(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        keys: Option<&Keys>,
        tokens: Vec<TokenRecord>,
    ) -> Result<()> {
        let (Some(keys), false) = (keys, tokens.is_empty()) else {
            return Ok(());
        };
        let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        let sealed: Vec<SealedToken> = tokens
            .iter()
            .filter(|t| seen.insert(t.token.clone()))
            .map(|t| {
                *per_type.entry(t.entity_type.to_string()).or_default() += 1;
                SealedToken {
                    token: t.token.clone(),
                    entity_type: t.entity_type.to_string(),
                    sealed: keys.encrypt(&t.entity_type, &t.value),
                }
            })
            .collect();
        let audit = AuditDraft::new(p.workspace_id, ctx, "pii.tokenize", "data_access")
            .resource("token_vault", p.workspace_id)
            .details(serde_json::json!({ "tokens": sealed.len(), "types": per_type }));
        self.store.put_tokens(p.workspace_id, &sealed, audit).await
    }

    /// Restores the tokens and encrypted values in `text`. Needs `pii:read`; audited as
    /// `pii.detokenize` (counts and token ids, never values).
    pub async fn detokenize_text(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        text: &str,
    ) -> Result<Detokenized> {
        need(p, Action::Read)?;
        let found = find_surrogates(text);
        let keys = self.keys(p.workspace_id).await?;
        let ids: Vec<String> = found
            .iter()
            .filter(|s| s.kind == SurrogateKind::Token)
            .map(|s| text[s.start..s.end].to_owned())
            .collect();
        let values = self.token_values(p.workspace_id, &keys, &ids).await?;
        let (mut out, mut at, mut restored, mut unknown) = (String::new(), 0, 0u64, 0u64);
        for s in &found {
            let sur = &text[s.start..s.end];
            let value = match s.kind {
                SurrogateKind::Token => values.get(sur).map(|(_, v)| v.clone()),
                SurrogateKind::Encrypted => keys.decrypt(sur).map(|(_, v)| v),
            };
            out.push_str(&text[at..s.start]);
            match value {
                Some(v) => {
                    out.push_str(&v);
                    restored += 1;
                }
                None => {
                    out.push_str(sur);
                    unknown += 1;
                }
            }
            at = s.end;
        }
        out.push_str(&text[at..]);
        self.audit_detokenize(p, ctx, &ids, restored, unknown)
            .await?;
        Ok(Detokenized {
            text: out,
            restored,
            unknown,
        })
    }

    /// The values of `tokens`. Needs `pii:read`; audited as `pii.detokenize`.
    pub async fn detokenize_tokens(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tokens: &[String],
    ) -> Result<Vec<TokenValue>> {
        need(p, Action::Read)?;
        check_count(tokens.len())?;
        let keys = self.keys(p.workspace_id).await?;
        let values = self.token_values(p.workspace_id, &keys, tokens).await?;
        let out: Vec<TokenValue> = tokens
            .iter()
            .map(|t| match values.get(t) {
                Some((kind, v)) => TokenValue {
                    token: t.clone(),
                    entity_type: Some(kind.clone()),
                    value: Some(v.clone()),
                },
                None => TokenValue {
                    token: t.clone(),
                    entity_type: None,
                    value: None,
                },
            })
            .collect();
        let restored = out.iter().filter(|v| v.value.is_some()).count() as u64;
        self.audit_detokenize(p, ctx, tokens, restored, tokens.len() as u64 - restored)
            .await?;
        Ok(out)
    }

    async fn token_values(
        &self,
        ws: WorkspaceId,
        keys: &Keys,
        tokens: &[String],
    ) -> Result<HashMap<String, (String, String)>> {
        if tokens.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self.store.get_tokens(ws, tokens).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            // A sealed value that does not open is an integrity failure, not a miss.
            let (_, v) = keys.decrypt(&r.sealed).ok_or_else(|| {
                CoreError::Integrity(format!("token vault entry {} does not decrypt", r.token))
            })?;
            out.insert(r.token, (r.entity_type, v));
        }
        Ok(out)
    }

    async fn audit_detokenize(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        tokens: &[String],
        restored: u64,
        unknown: u64,
    ) -> Result<()> {
        let audit = AuditDraft::new(p.workspace_id, ctx, "pii.detokenize", "data_access")
            .resource("token_vault", p.workspace_id)
            .details(serde_json::json!({
                "restored": restored,
                "unknown": unknown,
                "tokens": tokens.iter().take(100).collect::<Vec<_>>(),
            }));
        self.store.record_access(audit).await
    }
}

pub(crate) fn needs_keys(p: &Profile) -> bool {
    std::iter::once(&p.default)
        .chain(p.operators.values())
        .chain(p.fields.values().map(|r| &r.operator))
        .any(|o| o.keyed())
}

fn check_count(n: usize) -> Result<()> {
    if n > MAX_TEXTS {
        return Err(CoreError::invalid(
            "texts",
            format!("at most {MAX_TEXTS} items per request"),
        ));
    }
    Ok(())
}
