//! Lineage: where a version came from (upstream) and what was made from it (downstream),
//! as a graph of commits with the transformation that made each.

use std::collections::{HashSet, VecDeque};

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
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: crate::time::Timestamp,
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

fn node(c: &Commit, distance: u32) -> LineageNode {
    LineageNode {
        commit: c.id.0.clone(),
        dataset_id: c.dataset_id,
        message: c.message.clone(),
        created_at: c.created_at,
        transformation: c.transformation.clone(),
        distance,
    }
}

impl VaultService {
    /// The lineage graph of `reference`, `depth` steps in `direction` (breadth-first).
    pub async fn lineage(
        &self,
        d: &Dataset,
        reference: Option<&str>,
        direction: Direction,
        depth: u32,
    ) -> Result<Lineage> {
        let root = self.resolve(d, reference).await?;
        let mut out = Lineage {
            root: root.id.0.clone(),
            direction,
            nodes: vec![node(&root, 0)],
            edges: vec![],
            truncated: false,
        };
        let mut seen = HashSet::from([root.id.clone()]);
        let mut q = VecDeque::from([(root, 0u32)]);
        while let Some((c, dist)) = q.pop_front() {
            if dist >= depth {
                out.truncated |= match direction {
                    Direction::Upstream => !c.parents.is_empty(),
                    Direction::Downstream => !self
                        .store
                        .children(d.workspace_id, d.id, &c.id)
                        .await?
                        .is_empty(),
                };
                continue;
            }
            let next: Vec<Commit> = match direction {
                Direction::Upstream => {
                    let mut v = vec![];
                    for p in &c.parents {
                        v.push(
                            self.store
                                .get_commit(d.workspace_id, d.id, p.as_str())
                                .await?,
                        );
                    }
                    v
                }
                Direction::Downstream => self.store.children(d.workspace_id, d.id, &c.id).await?,
            };
            for n in next {
                out.edges.push(match direction {
                    Direction::Upstream => LineageEdge {
                        from: n.id.0.clone(),
                        to: c.id.0.clone(),
                    },
                    Direction::Downstream => LineageEdge {
                        from: c.id.0.clone(),
                        to: n.id.0.clone(),
                    },
                });
                if seen.insert(n.id.clone()) {
                    if out.nodes.len() >= MAX_NODES {
                        out.truncated = true;
                        continue;
                    }
                    out.nodes.push(node(&n, dist + 1));
                    q.push_back((n, dist + 1));
                }
            }
        }
        Ok(out)
    }
}
