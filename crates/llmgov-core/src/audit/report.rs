//! Compliance reports: the audit entries of a period, sorted into evidence sections, and each
//! framework's controls pointing at the sections that evidence them (seed 003 §4.4). Every
//! report names the signed checkpoint it was computed against, so a reader can verify that
//! the entries behind it are in the log.

use serde::Serialize;

use super::AuditEntry;
use super::checkpoint::Checkpoint;
use crate::ids::WorkspaceId;
use crate::store::Store;
use crate::time::Timestamp;
use crate::{CoreError, Result};

/// Entries kept per section in a report; counts always cover every entry.
pub const MAX_ENTRIES_PER_SECTION: usize = 500;
const PAGE: i64 = 2_000;

/// An evidence section: which entries belong to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    SensitiveDataAccess,
    PolicyAndConfigurationChanges,
    PermissionChanges,
    FailedLogins,
    AccessDenials,
    KeyOperations,
    ErasureRequests,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::SensitiveDataAccess,
        Section::PolicyAndConfigurationChanges,
        Section::PermissionChanges,
        Section::FailedLogins,
        Section::AccessDenials,
        Section::KeyOperations,
        Section::ErasureRequests,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Section::SensitiveDataAccess => "sensitive_data_access",
            Section::PolicyAndConfigurationChanges => "policy_and_configuration_changes",
            Section::PermissionChanges => "permission_changes",
            Section::FailedLogins => "failed_logins",
            Section::AccessDenials => "access_denials",
            Section::KeyOperations => "key_operations",
            Section::ErasureRequests => "erasure_requests",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::SensitiveDataAccess => "Access to sensitive data",
            Section::PolicyAndConfigurationChanges => "Policy and configuration changes",
            Section::PermissionChanges => "Permission and membership changes",
            Section::FailedLogins => "Failed and refused logins",
            Section::AccessDenials => "Access denials",
            Section::KeyOperations => "Key and credential operations",
            Section::ErasureRequests => "Erasure requests",
        }
    }

    /// Whether `e` is evidence for this section.
    pub fn contains(self, e: &AuditEntry) -> bool {
        let ev = e.event_type.as_str();
        match self {
            Section::SensitiveDataAccess => e.event_category == "data_access",
            Section::PolicyAndConfigurationChanges => {
                matches!(e.event_category.as_str(), "configuration" | "policy_change")
                    || ev.starts_with("policies.")
            }
            Section::PermissionChanges => {
                e.event_category == "access_control"
                    && ev != "access.denied"
                    && e.status == "success"
            }
            Section::FailedLogins => ev == "auth.login" && e.status != "success",
            Section::AccessDenials => ev == "access.denied" || ev == "auth.refresh_token_reuse",
            Section::KeyOperations => e.event_category == "key_management",
            Section::ErasureRequests => ev.starts_with("erasure.") || e.event_category == "erasure",
        }
    }
}

/// A control of a framework and the sections that evidence it.
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    pub sections: &'static [Section],
}

use Section::*;

const ALL_SECTIONS: &[Section] = &Section::ALL;

pub const FRAMEWORKS: &[(&str, &str, &[Control])] = &[
    (
        "soc2",
        "SOC 2",
        &[
            Control {
                id: "CC6.1",
                title: "Logical access security",
                sections: &[PermissionChanges, FailedLogins, AccessDenials],
            },
            Control {
                id: "CC6.6",
                title: "Encryption and key management",
                sections: &[KeyOperations],
            },
            Control {
                id: "CC7.2",
                title: "System monitoring",
                sections: &[PolicyAndConfigurationChanges, FailedLogins, AccessDenials],
            },
            Control {
                id: "CC8.1",
                title: "Change management",
                sections: &[PolicyAndConfigurationChanges, PermissionChanges],
            },
        ],
    ),
    (
        "gdpr",
        "GDPR",
        &[
            Control {
                id: "Art. 5",
                title: "Data minimisation and purpose limitation",
                sections: &[SensitiveDataAccess],
            },
            Control {
                id: "Art. 17",
                title: "Right to erasure",
                sections: &[ErasureRequests],
            },
            Control {
                id: "Art. 30",
                title: "Records of processing",
                sections: &[SensitiveDataAccess, PolicyAndConfigurationChanges],
            },
            Control {
                id: "Art. 32",
                title: "Security of processing",
                sections: &[
                    PermissionChanges,
                    KeyOperations,
                    FailedLogins,
                    AccessDenials,
                ],
            },
        ],
    ),
    (
        "hipaa",
        "HIPAA",
        &[
            Control {
                id: "164.308(a)(4)",
                title: "Information access management",
                sections: &[PermissionChanges, AccessDenials],
            },
            Control {
                id: "164.308(a)(5)(ii)(C)",
                title: "Log-in monitoring",
                sections: &[FailedLogins],
            },
            Control {
                id: "164.312(a)(2)(iv)",
                title: "Encryption and decryption",
                sections: &[KeyOperations],
            },
            Control {
                id: "164.312(b)",
                title: "Audit controls",
                sections: ALL_SECTIONS,
            },
        ],
    ),
    (
        "eu_ai_act",
        "EU AI Act",
        &[
            Control {
                id: "Art. 10",
                title: "Data and data governance",
                sections: &[SensitiveDataAccess, ErasureRequests],
            },
            Control {
                id: "Art. 12",
                title: "Record-keeping",
                sections: ALL_SECTIONS,
            },
            Control {
                id: "Art. 14",
                title: "Human oversight",
                sections: &[PolicyAndConfigurationChanges, PermissionChanges],
            },
            Control {
                id: "Art. 15",
                title: "Accuracy, robustness and cybersecurity",
                sections: &[KeyOperations, FailedLogins, AccessDenials],
            },
        ],
    ),
];

pub fn framework(id: &str) -> Option<(&'static str, &'static [Control])> {
    FRAMEWORKS
        .iter()
        .find(|(f, _, _)| *f == id)
        .map(|(_, name, c)| (*name, *c))
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionReport {
    pub id: &'static str,
    pub title: &'static str,
    pub count: u64,
    /// The first entries of the period (at most [`MAX_ENTRIES_PER_SECTION`]).
    #[serde(skip)]
    pub entries: Vec<AuditEntry>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    pub id: &'static str,
    pub title: &'static str,
    pub sections: Vec<&'static str>,
    /// Entries evidencing the control in the period.
    pub evidence_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub framework: String,
    pub framework_name: &'static str,
    pub workspace_id: WorkspaceId,
    pub from: Timestamp,
    pub to: Timestamp,
    pub generated_at: Timestamp,
    /// Entries of the period (all of them, not only those in a section).
    pub entries_in_period: u64,
    pub checkpoint: Checkpoint,
    pub controls: Vec<ControlReport>,
    pub sections: Vec<SectionReport>,
}

/// Builds a report of `ws`'s log up to `checkpoint`, for entries in `[from, to)`.
pub async fn build(
    store: &dyn Store,
    ws: WorkspaceId,
    framework_id: &str,
    from: Timestamp,
    to: Timestamp,
    checkpoint: Checkpoint,
) -> Result<Report> {
    let (name, controls) = framework(framework_id).ok_or_else(|| {
        let known: Vec<&str> = FRAMEWORKS.iter().map(|(f, _, _)| *f).collect();
        CoreError::invalid(
            "framework",
            format!("unknown framework; one of: {}", known.join(", ")),
        )
    })?;
    let mut sections: Vec<SectionReport> = Section::ALL
        .iter()
        .map(|s| SectionReport {
            id: s.id(),
            title: s.title(),
            count: 0,
            entries: Vec::new(),
            truncated: false,
        })
        .collect();
    let mut in_period = 0u64;
    let mut next = 0i64;
    let size = checkpoint.tree_size as i64;
    while next < size {
        let page = store.audit_range(ws, next, PAGE.min(size - next)).await?;
        let Some(last) = page.last() else { break };
        next = last.sequence + 1;
        for e in page
            .into_iter()
            .filter(|e| e.timestamp >= from && e.timestamp < to)
        {
            in_period += 1;
            for (s, r) in Section::ALL.iter().zip(sections.iter_mut()) {
                if s.contains(&e) {
                    r.count += 1;
                    if r.entries.len() < MAX_ENTRIES_PER_SECTION {
                        r.entries.push(e.clone());
                    } else {
                        r.truncated = true;
                    }
                }
            }
        }
    }
    let count_of = |s: Section| {
        sections
            .iter()
            .find(|r| r.id == s.id())
            .map(|r| r.count)
            .unwrap_or(0)
    };
    let controls = controls
        .iter()
        .map(|c| ControlReport {
            id: c.id,
            title: c.title,
            sections: c.sections.iter().map(|s| s.id()).collect(),
            evidence_count: c.sections.iter().map(|s| count_of(*s)).sum(),
        })
        .collect();
    Ok(Report {
        framework: framework_id.to_string(),
        framework_name: name,
        workspace_id: ws,
        from,
        to,
        generated_at: crate::time::now(),
        entries_in_period: in_period,
        checkpoint,
        controls,
        sections,
    })
}
