//! Lineage sources of a push: versions of other datasets the pushed data was made from,
//! named `NAME` or `NAME@REF` and resolved in the caller's workspace.

use super::model::Dataset;
use super::service::VaultService;
use crate::identity::Principal;
use crate::{CoreError, Result};

/// A version of another dataset: `name` or `name@ref` (ref: branch, tag or commit; default
/// the dataset's default branch); a dataset id may stand for the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub dataset: String,
    pub reference: Option<String>,
}

/// Most sources one commit names.
const MAX_SOURCES: usize = 20;

impl SourceRef {
    pub fn parse(s: &str) -> Result<Self> {
        let (dataset, reference) = match s.split_once('@') {
            Some((d, r)) => (d, Some(r.to_string())),
            None => (s, None),
        };
        if dataset.is_empty() || reference.as_deref() == Some("") {
            return Err(CoreError::invalid("source", "a source is NAME or NAME@REF"));
        }
        Ok(Self {
            dataset: dataset.to_string(),
            reference,
        })
    }
}

impl VaultService {
    /// The commits `sources` name, in the caller's workspace, as lineage entries.
    pub(super) async fn resolve_sources(
        &self,
        p: &Principal,
        d: &Dataset,
        sources: &[SourceRef],
    ) -> Result<Vec<serde_json::Value>> {
        if sources.len() > MAX_SOURCES {
            return Err(CoreError::invalid(
                "source",
                format!("at most {MAX_SOURCES} sources"),
            ));
        }
        let mut out = Vec::with_capacity(sources.len());
        for s in sources {
            let src = match uuid::Uuid::parse_str(&s.dataset) {
                Ok(id) => {
                    self.store
                        .get_dataset(p.workspace_id, crate::ids::DatasetId(id))
                        .await?
                }
                Err(_) => {
                    self.store
                        .dataset_by_name(p.workspace_id, &s.dataset)
                        .await?
                }
            };
            if src.id == d.id {
                return Err(CoreError::invalid(
                    "source",
                    "a source is another dataset (this dataset's history is its parents)",
                ));
            }
            let c = self.resolve(&src, s.reference.as_deref()).await?;
            out.push(serde_json::json!({
                "dataset_id": src.id,
                "dataset": src.name.as_str(),
                "commit": c.id,
            }));
        }
        Ok(out)
    }
}
