//! Datasets, commits and refs.

use serde::{Deserialize, Serialize};

use crate::ids::{DatasetId, UserId, WorkspaceId};
use crate::time::Timestamp;
use crate::{CoreError, Result};

str_enum!(
    /// How a dataset's records are written. Exports give back the format imported.
    DatasetFormat, "format" {
        Jsonl => "jsonl",
        Csv => "csv",
        Parquet => "parquet",
    }
);

impl DatasetFormat {
    pub fn code(self) -> u8 {
        match self {
            DatasetFormat::Jsonl => 1,
            DatasetFormat::Csv => 2,
            DatasetFormat::Parquet => 3,
        }
    }
    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.code() == c)
    }
}

/// A dataset name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or
/// digit. Names are unique in a workspace; nothing in them can escape a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DatasetName(String);

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(CoreError::invalid(
                "name",
                "a dataset name has 1 to 128 characters among A-Z a-z 0-9 . _ - and starts with a letter or digit",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A branch or tag name, git-style: 1 to 100 characters of `A-Z a-z 0-9 . _ - /`, no `..`,
/// no leading `-` or `/`, no trailing `/` or `.`, no empty path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RefName(String);

impl RefName {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
            && !s.contains("..")
            && !s.contains("//")
            && !s.starts_with(['-', '/', '.'])
            && !s.ends_with(['/', '.']);
        if !ok {
            return Err(CoreError::invalid(
                "ref",
                "a branch or tag name has 1 to 100 characters among A-Z a-z 0-9 . _ - / (no '..', no leading '-', '/' or '.', no trailing '/' or '.')",
            ));
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The default branch of every dataset.
pub const MAIN: &str = "main";

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dataset {
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub id: DatasetId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: DatasetName,
    pub description: String,
    pub format: DatasetFormat,
    /// Inferred on the first import: field name → JSON type (`string`, `number`, `integer`,
    /// `boolean`, `object`, `array`, `null`, or several joined with `|`).
    pub schema: serde_json::Value,
    pub tags: Vec<String>,
    pub metadata: serde_json::Value,
    pub default_branch: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<uuid::Uuid>))]
    pub created_by: Option<UserId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// What a client sends to create a dataset.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_format")]
    pub format: DatasetFormat,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
}

fn default_format() -> DatasetFormat {
    DatasetFormat::Jsonl
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Changes to a dataset's descriptive fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DatasetPatch {
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
}

pub(crate) fn check_descriptive(
    description: &str,
    tags: &[String],
    metadata: &serde_json::Value,
) -> Result<()> {
    if description.chars().count() > 4096 {
        return Err(CoreError::invalid("description", "at most 4096 characters"));
    }
    if tags.len() > 50
        || tags
            .iter()
            .any(|t| t.is_empty() || t.len() > 64 || t.chars().any(char::is_control))
    {
        return Err(CoreError::invalid(
            "tags",
            "at most 50 tags of 1 to 64 printable characters",
        ));
    }
    if !metadata.is_object() || metadata.to_string().len() > 16 * 1024 {
        return Err(CoreError::invalid(
            "metadata",
            "metadata is a JSON object of at most 16 KiB",
        ));
    }
    Ok(())
}

/// A commit's id: the BLAKE3 hash of its content (hex), so a commit cannot change without
/// changing its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitId(pub String);

impl CommitId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CommitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commit {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: CommitId,
    #[serde(skip)]
    pub dataset_id: DatasetId,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub parents: Vec<CommitId>,
    pub message: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<uuid::Uuid>))]
    pub author_id: Option<UserId>,
    pub author: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// The manifest object (hex BLAKE3 of its stored bytes).
    pub manifest: String,
    pub record_count: u64,
    pub byte_count: u64,
    /// Bytes of objects this commit added to the store.
    pub new_bytes: u64,
    /// How the commit came about (`import`, `append`, `merge`, `revert`, ...) and from what.
    pub transformation: serde_json::Value,
    pub schema: serde_json::Value,
    /// Commits on the first-parent chain up to and including this one.
    pub depth: u64,
}

impl Commit {
    /// The content id: every field that makes the commit, hashed in a fixed order.
    pub fn compute_id(&self) -> CommitId {
        let mut h = blake3::Hasher::new();
        h.update(b"llmgov-commit-v1\0");
        h.update(self.dataset_id.0.as_bytes());
        for p in &self.parents {
            h.update(b"p");
            h.update(p.0.as_bytes());
        }
        let mut field = |b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(self.message.as_bytes());
        field(self.author.as_bytes());
        field(self.created_at.to_rfc3339().as_bytes());
        field(self.manifest.as_bytes());
        field(self.transformation.to_string().as_bytes());
        field(self.schema.to_string().as_bytes());
        CommitId(h.finalize().to_hex().to_string())
    }
}

str_enum!(
    RefKind, "kind" {
        Branch => "branch",
        Tag => "tag",
    }
);

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ref {
    pub name: String,
    pub kind: RefKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub commit_id: CommitId,
    /// Branches only: pushes and deletion need `datasets:delete` (data owners).
    pub protected: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_traversal_and_control_characters() {
        for ok in ["chats", "chat-2024.v1", "A_b"] {
            DatasetName::parse(ok).unwrap();
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            ".hidden",
            "-x",
            "a\nb",
            "a\0",
            &"x".repeat(129),
            "é",
        ] {
            assert!(DatasetName::parse(bad).is_err(), "{bad:?}");
        }
        for ok in ["main", "feature/x", "v1.0", "release-2"] {
            RefName::parse(ok).unwrap();
        }
        for bad in [
            "", "a..b", "/x", "x/", "-x", "a//b", "x.", ".x", "a b", "a\u{7f}",
        ] {
            assert!(RefName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
