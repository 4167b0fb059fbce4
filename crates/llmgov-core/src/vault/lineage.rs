//! Lineage: where a version came from (upstream) and what was made from it (downstream),
//! as a graph of commits with the transformation that made each.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Serialize;

use super::model::{Commit, Dataset};
use super::service::VaultService;
use crate::Result;

str_enum!(
    Direction, "direction" {
        Upstream => "upstream",
        Downstream => "downstream",
    }
);

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineageNode {
    pub commit: String,
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub dataset_id: crate::ids::DatasetId,
    /// The dataset's name; `null` when the dataset has been deleted (the node then only
    /// names the version that was used).
    pub dataset: Option<String>,
    pub message: String,
    /// `null` for a version of a deleted dataset.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub created_at: Option<crate::time::Timestamp>,
    /// How the commit came about (`import`, `append`, `merge`, `revert`, ...).
    pub transformation: serde_json::Value,
    /// Steps from the starting commit.
    pub distance: u32,
}

/// `from` is a parent of `to`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineageEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineage {
    pub root: String,
    pub direction: Direction,
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
    /// True when the depth or node limit cut the graph.
    pub truncated: bool,
}

/// Most nodes returned.
const MAX_NODES: usize = 1000;

fn node(c: &Commit, dataset: &str, distance: u32) -> LineageNode {
    LineageNode {
        commit: c.id.0.clone(),
        dataset_id: c.dataset_id,
        dataset: Some(dataset.to_string()),
        message: c.message.clone(),
        created_at: Some(c.created_at),
        transformation: c.transformation.clone(),
        distance,
    }
}

/// Versions of other datasets a commit names as its sources.
fn sources(c: &Commit) -> Vec<(crate::ids::DatasetId, String)> {
    c.transformation
        .get("sources")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let id = s.get("dataset_id")?.as_str()?.parse::<uuid::Uuid>().ok()?;
            Some((
                crate::ids::DatasetId(id),
                s.get("commit")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

enum Step {
    Commit(Box<Commit>),
    /// A source version whose dataset is gone.
    Gone(crate::ids::DatasetId, String),
}

impl VaultService {
    /// The lineage graph of `reference`, `depth` steps in `direction` (breadth-first):
    /// parents and children within the dataset, and versions of other datasets it was made
    /// from (upstream) or that were made from it (downstream).
    pub async fn lineage(
        &self,
        d: &Dataset,
        reference: Option<&str>,
        direction: Direction,
        depth: u32,
    ) -> Result<Lineage> {
        let root = self.resolve(d, reference).await?;
        let ws = d.workspace_id;
        let mut names: HashMap<crate::ids::DatasetId, Option<String>> =
            HashMap::from([(d.id, Some(d.name.as_str().to_string()))]);
        let mut out = Lineage {
            root: root.id.0.clone(),
            direction,
            nodes: vec![node(&root, d.name.as_str(), 0)],
            edges: vec![],
            truncated: false,
        };
        let mut seen = HashSet::from([(root.dataset_id, root.id.clone())]);
        let mut q = VecDeque::from([(root, 0u32)]);
        while let Some((c, dist)) = q.pop_front() {
            let next: Vec<Step> = match direction {
                Direction::Upstream => {
                    let mut v = vec![];
                    for p in &c.parents {
                        let parent = self.store.get_commit(ws, c.dataset_id, p.as_str()).await?;
                        v.push(Step::Commit(Box::new(parent)));
                    }
                    for (sd, sc) in sources(&c) {
                        match self.store.get_commit(ws, sd, &sc).await {
                            Ok(s) => v.push(Step::Commit(Box::new(s))),
                            Err(crate::CoreError::NotFound { .. }) => v.push(Step::Gone(sd, sc)),
                            Err(e) => return Err(e),
                        }
                    }
                    v
                }
                Direction::Downstream => {
                    let mut v: Vec<Step> = self
                        .store
                        .children(ws, c.dataset_id, &c.id)
                        .await?
                        .into_iter()
                        .map(|c| Step::Commit(Box::new(c)))
                        .collect();
                    v.extend(
                        self.store
                            .derived(ws, c.dataset_id, Some(&c.id))
                            .await?
                            .into_iter()
                            .map(|c| Step::Commit(Box::new(c))),
                    );
                    v
                }
            };
            if dist >= depth {
                out.truncated |= !next.is_empty();
                continue;
            }
            for n in next {
                let (id, key) = match &n {
                    Step::Commit(n) => (n.id.0.clone(), (n.dataset_id, n.id.clone())),
                    Step::Gone(ds, commit) => (
                        commit.clone(),
                        (*ds, super::model::CommitId(commit.clone())),
                    ),
                };
                out.edges.push(match direction {
                    Direction::Upstream => LineageEdge {
                        from: id.clone(),
                        to: c.id.0.clone(),
                    },
                    Direction::Downstream => LineageEdge {
                        from: c.id.0.clone(),
                        to: id.clone(),
                    },
                });
                if !seen.insert(key) {
                    continue;
                }
                if out.nodes.len() >= MAX_NODES {
                    out.truncated = true;
                    continue;
                }
                match n {
                    Step::Commit(n) => {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            names.entry(n.dataset_id)
                        {
                            e.insert(match self.store.get_dataset(ws, n.dataset_id).await {
                                Ok(x) => Some(x.name.as_str().to_string()),
                                Err(crate::CoreError::NotFound { .. }) => None,
                                Err(e) => return Err(e),
                            });
                        }
                        let mut x = node(&n, "", dist + 1);
                        x.dataset = names[&n.dataset_id].clone();
                        out.nodes.push(x);
                        q.push_back((*n, dist + 1));
                    }
                    Step::Gone(ds, commit) => out.nodes.push(LineageNode {
                        commit,
                        dataset_id: ds,
                        dataset: None,
                        message: String::new(),
                        created_at: None,
                        transformation: serde_json::Value::Null,
                        distance: dist + 1,
                    }),
                }
            }
        }
        Ok(out)
    }
}
