//! Findings per dataset version: every version is scanned (after its import, or when its
//! findings are first asked for), with counts per type and per field and a few sample
//! locations. Sample values are stored sealed with the workspace's key and shown only to
//! holders of `pii:read`.

use std::collections::BTreeMap;
use std::sync::Arc;

use llmgov_pii::Scanner;
use llmgov_pii::anonymize::{Anonymizer, JsonReport, Keys};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PiiService, need};
use crate::access::{Action, Permission, Resource};
use crate::audit::{AuditDraft, RequestContext};
use crate::identity::Principal;
use crate::ids::DatasetId;
use crate::time::Timestamp;
use crate::vault::model::{Commit, Dataset};
use crate::{CoreError, Result};

/// Sample locations kept per type and field, and in all.
const SAMPLES_PER_FIELD: usize = 3;
const MAX_SAMPLES: usize = 100;
/// Records read per page while scanning.
const PAGE: u64 = 1000;

/// Where one finding is (never what, unless the reader holds `pii:read`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PiiSample {
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The record's position in the version.
    pub record: u64,
    /// The field's path (keys joined by `.`; `""` for a record that is a bare string).
    pub field: String,
    /// Code-point offsets in the field's text.
    pub start: usize,
    pub end: usize,
    /// The value: shown to holders of `pii:read` only (stored sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The findings of one dataset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetPiiReport {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dataset_id: DatasetId,
    pub commit: String,
    /// The version of the workspace's PII settings the scan used.
    pub settings_version: i64,
    pub records: u64,
    pub records_with_pii: u64,
    /// Entities found in all.
    pub total: u64,
    /// Entities per type.
    pub counts: BTreeMap<String, u64>,
    /// Entities per field and type.
    pub fields: BTreeMap<String, BTreeMap<String, u64>>,
    pub samples: Vec<PiiSample>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub scanned_at: Timestamp,
}

impl DatasetPiiReport {
    /// Whether the version holds no PII the scanner finds.
    pub fn clean(&self) -> bool {
        self.total == 0
    }
}

/// Accumulates findings over the records of a version.
struct Tally<'a> {
    scanner: &'a Scanner,
    keys: &'a Keys,
    records: u64,
    with_pii: u64,
    total: u64,
    counts: BTreeMap<String, u64>,
    fields: BTreeMap<String, BTreeMap<String, u64>>,
    samples: Vec<PiiSample>,
}

impl Tally<'_> {
    fn record(&mut self, index: u64, v: &Value) {
        self.records += 1;
        let before = self.total;
        let mut path = String::new();
        self.walk(index, v, &mut path);
        if self.total > before {
            self.with_pii += 1;
        }
    }

    fn walk(&mut self, index: u64, v: &Value, path: &mut String) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.walk(index, child, path);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for child in items {
                    self.walk(index, child, path);
                }
            }
            Value::String(s) => {
                for e in self.scanner.scan(s) {
                    let t = e.kind.as_str();
                    self.total += 1;
                    *self.counts.entry(t.to_owned()).or_default() += 1;
                    let per_field = self.fields.entry(path.clone()).or_default();
                    let n = per_field.entry(t.to_owned()).or_default();
                    *n += 1;
                    if *n as usize <= SAMPLES_PER_FIELD && self.samples.len() < MAX_SAMPLES {
                        let value: String = s.chars().skip(e.start).take(e.end - e.start).collect();
                        self.samples.push(PiiSample {
                            entity_type: t.to_owned(),
                            record: index,
                            field: path.clone(),
                            start: e.start,
                            end: e.end,
                            value: Some(self.keys.encrypt(&e.kind, &value)),
                        });
                    }
                }
            }
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
        }
    }
}

impl PiiService {
    fn vault(&self) -> Result<&Arc<crate::vault::VaultService>> {
        self.vault.as_ref().ok_or_else(|| {
            CoreError::Unavailable("the data vault is not configured on this instance".into())
        })
    }

    /// Scans every record of a version with the workspace's current settings and stores
    /// the findings (replacing older ones). The platform processing its own data is not an
    /// access: what is audited is who reads the findings' values.
    pub async fn scan_version(&self, d: &Dataset, c: &Commit) -> Result<DatasetPiiReport> {
        let vault = self.vault()?;
        let (scanner, settings_version) = self.scanner(d.workspace_id).await?;
        let keys = Arc::new(self.keys(d.workspace_id).await?);
        let mut state = (0u64, 0u64, 0u64);
        let mut counts = BTreeMap::new();
        let mut fields = BTreeMap::new();
        let mut samples = vec![];
        let mut from = 0;
        loop {
            let (total, items) = vault.system_read(d, c, from, PAGE).await?;
            if items.is_empty() {
                break;
            }
            from += items.len() as u64;
            let (scanner, keys) = (Arc::clone(&scanner), Arc::clone(&keys));
            let carried = (
                state,
                std::mem::take(&mut counts),
                std::mem::take(&mut fields),
                std::mem::take(&mut samples),
            );
            let out = tokio::task::spawn_blocking(move || {
                let ((records, with_pii, total), counts, fields, samples) = carried;
                let mut t = Tally {
                    scanner: &scanner,
                    keys: &keys,
                    records,
                    with_pii,
                    total,
                    counts,
                    fields,
                    samples,
                };
                for item in &items {
                    let v: Value = serde_json::from_str(item.data.get()).map_err(|_| {
                        CoreError::Integrity(format!("record {} is not JSON", item.index))
                    })?;
                    t.record(item.index, &v);
                }
                Ok::<_, CoreError>((
                    (t.records, t.with_pii, t.total),
                    t.counts,
                    t.fields,
                    t.samples,
                ))
            })
            .await
            .map_err(CoreError::internal)??;
            (state, counts, fields, samples) = out;
            if from >= total {
                break;
            }
        }
        let report = DatasetPiiReport {
            dataset_id: d.id,
            commit: c.id.to_string(),
            settings_version,
            records: state.0,
            records_with_pii: state.1,
            total: state.2,
            counts,
            fields,
            samples,
            scanned_at: crate::time::now(),
        };
        let json = serde_json::to_value(&report).map_err(CoreError::internal)?;
        self.store
            .put_dataset_pii(d.workspace_id, d.id, c.id.as_str(), settings_version, &json)
            .await?;
        Ok(report)
    }

    /// The findings of a version (scanning it first when it has none, or only some made
    /// with older settings). Needs `datasets:read`; sample values need `pii:read` too.
    pub async fn dataset_report(
        &self,
        p: &Principal,
        ctx: &RequestContext,
        id: DatasetId,
        reference: Option<&str>,
    ) -> Result<DatasetPiiReport> {
        let vault = self.vault()?;
        let d = vault.get_dataset(p, id).await?;
        let c = vault.resolve(&d, reference).await?;
        let mut report = self.version_report(&d, &c).await?;
        if p.require(Permission::new(Resource::Pii, Action::Read))
            .is_ok()
        {
            let keys = self.keys(p.workspace_id).await?;
            for s in &mut report.samples {
                s.value = s
                    .value
                    .as_deref()
                    .and_then(|v| keys.decrypt(v))
                    .map(|(_, v)| v);
            }
            let audit = AuditDraft::new(p.workspace_id, ctx, "datasets.pii_read", "data_access")
                .resource("dataset", d.id)
                .details(serde_json::json!({ "commit": c.id, "samples": report.samples.len() }));
            self.store.record_access(audit).await?;
        } else {
            for s in &mut report.samples {
                s.value = None;
            }
        }
        Ok(report)
    }

    /// The stored findings of a version if current, else a new scan.
    pub async fn version_report(&self, d: &Dataset, c: &Commit) -> Result<DatasetPiiReport> {
        let (_, version) = self.scanner(d.workspace_id).await?;
        if let Some(stored) = self
            .store
            .dataset_pii(d.workspace_id, d.id, c.id.as_str())
            .await?
            && stored.settings_version == version
        {
            return serde_json::from_value(stored.report).map_err(CoreError::internal);
        }
        self.scan_version(d, c).await
    }
}

/// What an anonymized derived dataset got.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DerivedDataset {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub dataset: Dataset,
    /// Whether the target dataset was created by this call.
    pub created: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub push: crate::vault::push::PushResult,
    /// The source version it was made from.
    pub source_commit: String,
    pub profile: String,
}

impl PiiService {
    /// A record transform applying the workspace's profile `profile` (pseudonyms scoped to
    /// `scope`): for anonymized exports. Tokens it mints are sealed into the token vault
    /// before the records that carry them leave (a failure ends the export).
    pub async fn record_transform(
        self: &Arc<Self>,
        p: &Principal,
        ctx: &RequestContext,
        profile: &str,
        scope: String,
    ) -> Result<crate::vault::read::RecordTransform> {
        need(p, Action::Execute)?;
        let (profile, c, keys) = self
            .prepared(
                p.workspace_id,
                &super::ProfileChoice::Named(profile.to_owned()),
            )
            .await?;
        // Checked once here, so the transform cannot fail on the profile itself.
        Anonymizer::new(&profile, keys.as_ref(), &scope)
            .map_err(|e| CoreError::invalid("profile", e.to_string()))?;
        let (this, p, ctx) = (Arc::clone(self), p.clone(), ctx.clone());
        let handle = tokio::runtime::Handle::current();
        Ok(Box::new(move |records: &mut [Value]| {
            let a = Anonymizer::new(&profile, keys.as_ref(), &scope)
                .map_err(|e| CoreError::invalid("profile", e.to_string()))?;
            let mut report = JsonReport::default();
            for r in records.iter_mut() {
                a.json(&c.scanner, r, &mut report);
            }
            if !report.tokens.is_empty() {
                // On the export's blocking thread: wait for the vault write.
                handle.block_on(this.keep_tokens(&p, &ctx, keys.as_ref(), report.tokens))?;
            }
            Ok(())
        }))
    }

    /// Makes (or adds a version to) dataset `target` from version `reference` of dataset
    /// `id` anonymized with profile `profile`; the new version names its source in its
    /// lineage. Needs `datasets:read` on the source, `datasets:create` when the target is
    /// new, and `datasets:update`.
    #[allow(clippy::too_many_arguments)]
    pub async fn derive_anonymized(
        self: &Arc<Self>,
        p: &Principal,
        ctx: &RequestContext,
        id: DatasetId,
        reference: Option<&str>,
        profile: &str,
        target: &str,
        branch: Option<String>,
    ) -> Result<DerivedDataset> {
        let vault = Arc::clone(self.vault()?);
        let source = vault.get_dataset(p, id).await?;
        let c = vault.resolve(&source, reference).await?;
        let (target_ds, created) = match vault.store().dataset_by_name(p.workspace_id, target).await
        {
            Ok(d) => (d, false),
            Err(CoreError::NotFound { .. }) => {
                let spec = crate::vault::model::DatasetSpec {
                    name: target.to_owned(),
                    description: format!(
                        "{} anonymized with the profile '{profile}'",
                        source.name.as_str()
                    ),
                    format: source.format,
                    tags: vec!["anonymized".into()],
                    metadata: serde_json::json!({
                        "anonymized": true,
                        "anonymization_profile": profile,
                        "derived_from": source.name.as_str(),
                    }),
                };
                (vault.create_dataset(p, ctx, spec).await?, true)
            }
            Err(e) => return Err(e),
        };
        if target_ds.id == source.id {
            return Err(CoreError::invalid(
                "target",
                "an anonymized version goes to another dataset",
            ));
        }
        let transform = self
            .record_transform(p, ctx, profile, source.id.to_string())
            .await?;
        let export = vault
            .export_commit(
                p,
                ctx,
                &source,
                c.clone(),
                reference,
                Some(target_ds.format),
                Some((profile.to_owned(), transform)),
            )
            .await?;
        let body = futures_util::stream::unfold(export.rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let opts = crate::vault::push::PushOptions {
            branch,
            message: Some(format!(
                "{}@{} anonymized with the profile '{profile}'",
                source.name.as_str(),
                &c.id.as_str()[..12.min(c.id.as_str().len())]
            )),
            on_error: crate::vault::push::OnError::Reject,
            sources: vec![crate::vault::sources::SourceRef {
                dataset: source.id.to_string(),
                reference: Some(c.id.to_string()),
            }],
        };
        let push = vault.push(p, ctx, &target_ds, opts, Box::pin(body)).await?;
        Ok(DerivedDataset {
            dataset: target_ds,
            created,
            push,
            source_commit: c.id.to_string(),
            profile: profile.to_owned(),
        })
    }
}
