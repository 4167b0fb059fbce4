//! Differences between two versions, record by record.
//!
//! Records are compared by fingerprint: the order-preserving alignment (patience diff, which
//! is near-linear when most records are unique) gives records removed, added and *changed*
//! (a record replaced at the same place of the alignment). Versions with the same manifest
//! are equal without reading a block; otherwise each block is read once for its fingerprints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use super::block::Fingerprint;
use super::model::{Commit, Dataset};
use super::service::VaultService;
use crate::Result;

str_enum!(
    DiffKind, "op" {
        Added => "added",
        Removed => "removed",
        Changed => "changed",
    }
);

/// One difference. Indexes are positions in the `from` and `to` versions.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffEntry {
    pub op: DiffKind,
    pub from_index: Option<u64>,
    pub to_index: Option<u64>,
    pub from_record_id: Option<String>,
    pub to_record_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
}

/// A field whose type set differs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaDiff {
    pub added_fields: Vec<String>,
    pub removed_fields: Vec<String>,
    pub changed_types: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Diff {
    pub from: String,
    pub to: String,
    pub summary: DiffSummary,
    pub schema: SchemaDiff,
    /// Every difference, in order of the `to` version.
    #[serde(skip)]
    pub entries: Vec<DiffEntry>,
}

fn fields(schema: &serde_json::Value) -> BTreeMap<String, String> {
    schema
        .get("fields")
        .and_then(|f| f.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Fields added, removed or retyped from schema `a` to schema `b`.
pub fn schema_diff(a: &serde_json::Value, b: &serde_json::Value) -> SchemaDiff {
    let (fa, fb) = (fields(a), fields(b));
    SchemaDiff {
        added_fields: fb
            .keys()
            .filter(|k| !fa.contains_key(*k))
            .cloned()
            .collect(),
        removed_fields: fa
            .keys()
            .filter(|k| !fb.contains_key(*k))
            .cloned()
            .collect(),
        changed_types: fa
            .iter()
            .filter_map(|(k, t)| {
                fb.get(k).filter(|u| *u != t).map(|u| FieldChange {
                    field: k.clone(),
                    from: t.clone(),
                    to: u.clone(),
                })
            })
            .collect(),
    }
}

/// Aligns two fingerprint sequences.
pub fn align(
    a: &[Fingerprint],
    b: &[Fingerprint],
    deadline: Duration,
) -> (DiffSummary, Vec<DiffEntry>) {
    let hex = |f: &Fingerprint| Some(crate::hex::encode(f));
    let ops =
        capture_diff_slices_deadline(Algorithm::Patience, a, b, Some(Instant::now() + deadline));
    let mut s = DiffSummary::default();
    let mut out = Vec::new();
    for op in ops {
        match op {
            DiffOp::Equal { len, .. } => s.unchanged += len as u64,
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                for i in 0..old_len {
                    out.push(DiffEntry {
                        op: DiffKind::Removed,
                        from_index: Some((old_index + i) as u64),
                        to_index: None,
                        from_record_id: hex(&a[old_index + i]),
                        to_record_id: None,
                    });
                }
                s.removed += old_len as u64;
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for i in 0..new_len {
                    out.push(DiffEntry {
                        op: DiffKind::Added,
                        from_index: None,
                        to_index: Some((new_index + i) as u64),
                        from_record_id: None,
                        to_record_id: hex(&b[new_index + i]),
                    });
                }
                s.added += new_len as u64;
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for i in 0..paired {
                    out.push(DiffEntry {
                        op: DiffKind::Changed,
                        from_index: Some((old_index + i) as u64),
                        to_index: Some((new_index + i) as u64),
                        from_record_id: hex(&a[old_index + i]),
                        to_record_id: hex(&b[new_index + i]),
                    });
                }
                for i in paired..old_len {
                    out.push(DiffEntry {
                        op: DiffKind::Removed,
                        from_index: Some((old_index + i) as u64),
                        to_index: None,
                        from_record_id: hex(&a[old_index + i]),
                        to_record_id: None,
                    });
                }
                for i in paired..new_len {
                    out.push(DiffEntry {
                        op: DiffKind::Added,
                        from_index: None,
                        to_index: Some((new_index + i) as u64),
                        from_record_id: None,
                        to_record_id: hex(&b[new_index + i]),
                    });
                }
                s.changed += paired as u64;
                s.removed += (old_len - paired) as u64;
                s.added += (new_len - paired) as u64;
            }
        }
    }
    (s, out)
}

impl VaultService {
    /// What changed from `from` to `to` (refs or commits).
    pub async fn diff(&self, d: &Dataset, from: &str, to: &str) -> Result<Diff> {
        let (a, b): (Commit, Commit) = (
            self.resolve(d, Some(from)).await?,
            self.resolve(d, Some(to)).await?,
        );
        let schema = schema_diff(&a.schema, &b.schema);
        if a.manifest == b.manifest {
            return Ok(Diff {
                from: a.id.0,
                to: b.id.0,
                summary: DiffSummary {
                    unchanged: b.record_count,
                    ..Default::default()
                },
                schema,
                entries: vec![],
            });
        }
        let (ma, mb) = (
            self.manifest_of(d, &a).await?,
            self.manifest_of(d, &b).await?,
        );
        let mut table = super::merge::BlockTable::default();
        let fa = self.load_version(d, &ma, &mut table).await?.fps;
        let fb = self.load_version(d, &mb, &mut table).await?.fps;
        drop(table);
        let (summary, entries) =
            tokio::task::spawn_blocking(move || align(&fa, &fb, Duration::from_secs(20)))
                .await
                .map_err(crate::CoreError::internal)?;
        Ok(Diff {
            from: a.id.0,
            to: b.id.0,
            summary,
            schema,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_finds_edits_insertions_and_removals() {
        let f = |i: u8| [i; 16];
        let a = vec![f(1), f(2), f(3), f(4), f(5)];
        let b = vec![f(1), f(9), f(3), f(4), f(7), f(5)];
        let (s, e) = align(&a, &b, Duration::from_secs(5));
        assert_eq!(
            s,
            DiffSummary {
                added: 1,
                removed: 0,
                changed: 1,
                unchanged: 4
            }
        );
        assert_eq!(e[0].op, DiffKind::Changed);
        assert_eq!((e[0].from_index, e[0].to_index), (Some(1), Some(1)));
        assert_eq!((e[1].op, e[1].to_index), (DiffKind::Added, Some(4)));
        let (s, _) = align(&b, &a, Duration::from_secs(5));
        assert_eq!((s.removed, s.changed), (1, 1));
    }

    #[test]
    fn schema_changes_list_fields() {
        let a = serde_json::json!({"fields": {"id": "integer", "text": "string"}});
        let b = serde_json::json!({"fields": {"id": "integer|string", "tags": "array"}});
        let d = schema_diff(&a, &b);
        assert_eq!(d.added_fields, vec!["tags"]);
        assert_eq!(d.removed_fields, vec!["text"]);
        assert_eq!(d.changed_types[0].field, "id");
    }
}
