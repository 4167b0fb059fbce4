//! Policies, their versions and violations (seed 000 §4.1.1), parsed at the boundary: a
//! value of these types is valid.

use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::ids::{PolicyId, UserId, ViolationId, WorkspaceId};
use crate::time::Timestamp;

/// Largest Rego source accepted (bytes): policies are rules, not data.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;
/// Values per condition list.
const MAX_CONDITION_VALUES: usize = 200;

str_enum!(
    /// What a policy governs.
    PolicyType, "policy_type" {
        Content => "content",
        Cost => "cost",
        ModelLifecycle => "model_lifecycle",
        Data => "data",
        Access => "access",
        Compliance => "compliance",
        Security => "security",
    }
);

str_enum!(
    /// `draft` → `active` → `archived`; an archived policy can be restored to `draft`.
    PolicyStatus, "status" {
        Draft => "draft",
        Active => "active",
        Archived => "archived",
    }
);

impl PolicyStatus {
    pub fn can_become(self, next: PolicyStatus) -> bool {
        use PolicyStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, Active | Archived) | (Active, Archived | Draft) | (Archived, Draft)
            )
    }
}

str_enum!(
    /// How serious a violation is.
    Severity, "severity" {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

str_enum!(
    /// The outcome of an evaluation, from least to most restrictive: combining results
    /// keeps the most restrictive one.
    Decision, "decision" {
        Allow => "allow",
        Redact => "redact",
        Review => "review",
        Deny => "deny",
    }
);

str_enum!(
    /// `open` → `acknowledged` → `resolved` | `false_positive`.
    ViolationStatus, "status" {
        Open => "open",
        Acknowledged => "acknowledged",
        Resolved => "resolved",
        FalsePositive => "false_positive",
    }
);

impl ViolationStatus {
    pub fn can_become(self, next: ViolationStatus) -> bool {
        use ViolationStatus::*;
        matches!(
            (self, next),
            (Open, Acknowledged | Resolved | FalsePositive)
                | (Acknowledged, Resolved | FalsePositive)
        )
    }
}

/// The policy's code. Only Rego today; the field leaves room for others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// `rego`.
    pub language: String,
    /// Rego v1 source declaring `package llmgov` (see the README for the rule names).
    pub source: String,
}

impl Definition {
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.language != "rego" {
            return Err(CoreError::invalid(
                "definition.language",
                "definition.language must be \"rego\"",
            ));
        }
        if self.source.len() > MAX_SOURCE_BYTES {
            return Err(CoreError::invalid(
                "definition.source",
                format!("definition.source must be at most {MAX_SOURCE_BYTES} bytes"),
            ));
        }
        if self.source.trim().is_empty() {
            return Err(CoreError::invalid(
                "definition.source",
                "definition.source is empty",
            ));
        }
        Ok(())
    }
}

/// What a policy applies to. An empty list matches anything; a non-empty list matches an
/// input whose value is in it (an input without the value does not match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    pub models: Vec<String>,
    pub providers: Vec<String>,
    pub teams: Vec<String>,
    pub users: Vec<String>,
    pub datasets: Vec<String>,
    pub event_types: Vec<String>,
    pub environments: Vec<String>,
}

impl Conditions {
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("model", &self.models),
            ("provider", &self.providers),
            ("team", &self.teams),
            ("user", &self.users),
            ("dataset", &self.datasets),
            ("event_type", &self.event_types),
            ("environment", &self.environments),
        ]
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        for (name, list) in self.lists() {
            if list.len() > MAX_CONDITION_VALUES
                || list.iter().any(|v| v.is_empty() || v.len() > 200)
            {
                return Err(CoreError::invalid(
                    format!("conditions.{name}s"),
                    format!(
                        "conditions.{name}s takes at most {MAX_CONDITION_VALUES} non-empty values of at most 200 characters"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a policy with these conditions applies to `input` (the evaluation input
    /// document: `model`, `provider`, `team`, `user`, `dataset`, `event_type`, `environment`).
    pub fn applies(&self, input: &serde_json::Value) -> bool {
        self.lists().iter().all(|(key, list)| {
            list.is_empty()
                || input
                    .get(key)
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| list.iter().any(|x| x == v || x == "*"))
        })
    }
}

/// What a violation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Keep a violation record.
    Record,
    /// Record and raise an alert of the given severity.
    Alert { severity: Severity },
    /// Refuse the request (`deny`).
    Block,
    /// Let the request through with the matched text removed (`redact`).
    Redact,
    /// Hold the request for a person's decision (`review`).
    RequireReview,
    /// Record and POST the violation to `url`. With a `secret`, the body is signed:
    /// `X-Llmgov-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. The
    /// secret is write-only: policies are shown with `secret_set` instead, and a change that
    /// names the same URL without a secret keeps the one it had.
    Notify {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Shown instead of the secret (ignored on input).
        #[serde(default)]
        secret_set: bool,
    },
}

impl Action {
    /// The decision a violation leads to under this action.
    pub fn decision(&self) -> Decision {
        match self {
            Action::Block => Decision::Deny,
            Action::Redact => Decision::Redact,
            Action::RequireReview => Decision::Review,
            Action::Record | Action::Alert { .. } | Action::Notify { .. } => Decision::Allow,
        }
    }

    fn validate(&self) -> Result<(), CoreError> {
        if let Action::Notify { url, secret, .. } = self {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.len() <= 2000
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(CoreError::invalid(
                    "actions",
                    "a notify action needs an http(s) url of at most 2000 characters",
                ));
            }
            if secret
                .as_ref()
                .is_some_and(|s| s.len() < 16 || s.len() > 256 || s.chars().any(char::is_control))
            {
                return Err(CoreError::invalid(
                    "actions",
                    "a notify secret has 16 to 256 characters and no control characters",
                ));
            }
        }
        Ok(())
    }
}

pub fn validate_actions(actions: &[Action]) -> Result<(), CoreError> {
    if actions.len() > 20 {
        return Err(CoreError::invalid("actions", "at most 20 actions"));
    }
    actions.iter().try_for_each(Action::validate)
}

/// The versioned part of a policy: everything a version snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicySpec {
    pub name: String,
    pub description: Option<String>,
    pub policy_type: PolicyType,
    pub category: Option<String>,
    pub priority: i32,
    pub status: PolicyStatus,
    pub definition: Definition,
    pub conditions: Conditions,
    pub actions: Vec<Action>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_from: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub effective_to: Option<Timestamp>,
    /// Compliance controls this policy implements (`eu_ai_act:art_13`, ...).
    pub controls: Vec<String>,
    /// The template it was made from, if any.
    pub template_id: Option<String>,
}

impl PolicySpec {
    /// The spec as the API shows it: notify secrets replaced by `secret_set`.
    pub fn redacted(mut self) -> Self {
        for a in &mut self.actions {
            if let Action::Notify {
                secret, secret_set, ..
            } = a
            {
                *secret_set = secret.take().is_some();
            }
        }
        self
    }

    /// Keeps `previous`'s secrets for notify actions of the same URL given without one (so
    /// that a client can send back a policy it read), and clears the output-only
    /// `secret_set` flags so that specs compare by what they do.
    pub fn keep_secrets(&mut self, previous: &[Action]) {
        for a in &mut self.actions {
            if let Action::Notify {
                url,
                secret,
                secret_set,
            } = a
            {
                *secret_set = false;
                if secret.is_none() {
                    *secret = previous.iter().find_map(|p| match p {
                        Action::Notify {
                            url: u, secret: s, ..
                        } if u == url => s.clone(),
                        _ => None,
                    });
                }
            }
        }
    }

    /// Actions, defaulting to `record` when none are given: a violation is never silent.
    pub fn effective_actions(&self) -> Vec<Action> {
        if self.actions.is_empty() {
            vec![Action::Record]
        } else {
            self.actions.clone()
        }
    }

    /// The decision a violation of this policy leads to (the strictest of its actions).
    pub fn violation_decision(&self) -> Decision {
        self.effective_actions()
            .iter()
            .map(Action::decision)
            .max()
            .unwrap_or(Decision::Allow)
    }

    /// Severity of violations: the highest alert severity, else `high` for blocking
    /// policies and `medium` otherwise.
    pub fn severity(&self) -> Severity {
        let alert = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Alert { severity } => Some(*severity),
                _ => None,
            })
            .max();
        alert.unwrap_or(if self.violation_decision() == Decision::Deny {
            Severity::High
        } else {
            Severity::Medium
        })
    }

    pub fn in_effect(&self, at: Timestamp) -> bool {
        self.effective_from.is_none_or(|f| at >= f) && self.effective_to.is_none_or(|t| at < t)
    }
}

/// A policy as stored: its current spec plus identity and bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: PolicyId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub spec: PolicySpec,
    /// Current version; every change adds one.
    pub version: i32,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub created_by: Option<UserId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl Policy {
    /// The policy as the API shows it (no notify secrets).
    pub fn redacted(self) -> Self {
        Self {
            spec: self.spec.redacted(),
            ..self
        }
    }
}

impl PolicyVersion {
    /// The version as the API shows it (no notify secrets).
    pub fn redacted(self) -> Self {
        Self {
            spec: self.spec.redacted(),
            ..self
        }
    }
}

/// An immutable snapshot of a policy at one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyVersion {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub policy_id: PolicyId,
    pub version: i32,
    pub spec: PolicySpec,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub changed_by: Option<UserId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: Timestamp,
    pub change_summary: Option<String>,
}

/// A recorded violation of a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: ViolationId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub policy_id: PolicyId,
    pub policy_version: i32,
    /// The Rego rule that produced it (`deny`, `deny_pii`, ...).
    pub rule: String,
    pub message: String,
    pub severity: Severity,
    pub decision: Decision,
    /// What was evaluated (`model`, `dataset`, `request`, ...).
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// The violation object the rule produced, plus evaluation context (no prompt text).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    pub status: ViolationStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub detected_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub updated_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub resolved_by: Option<UserId>,
    pub resolution_notes: Option<String>,
}

/// Filters of `GET /violations` and `GET /policies/{id}/violations`.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub policy_id: Option<PolicyId>,
    pub status: Option<ViolationStatus>,
    pub severity: Option<Severity>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Filters of `GET /policies` and `POST /policies/search`.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    pub status: Option<PolicyStatus>,
    pub policy_type: Option<PolicyType>,
    pub category: Option<String>,
    /// Case-insensitive substring of name or description.
    pub text: Option<String>,
    pub control: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_match_listed_values_only() {
        let c = Conditions {
            models: vec!["gpt-4o".into(), "claude-3".into()],
            environments: vec!["production".into()],
            ..Default::default()
        };
        assert!(c.applies(&json!({"model": "gpt-4o", "environment": "production"})));
        assert!(!c.applies(&json!({"model": "llama", "environment": "production"})));
        assert!(!c.applies(&json!({"model": "gpt-4o"})), "missing value");
        assert!(Conditions::default().applies(&json!({})));
    }

    fn spec(actions: Vec<Action>) -> PolicySpec {
        PolicySpec {
            name: "p".into(),
            description: None,
            policy_type: PolicyType::Content,
            category: None,
            priority: 0,
            status: PolicyStatus::Draft,
            definition: Definition {
                language: "rego".into(),
                source: "package llmgov".into(),
            },
            conditions: Conditions::default(),
            actions,
            effective_from: None,
            effective_to: None,
            controls: vec![],
            template_id: None,
        }
    }

    #[test]
    fn decisions_order_by_restriction_and_actions_pick_the_strictest() {
        assert!(Decision::Deny > Decision::Review && Decision::Review > Decision::Redact);
        assert_eq!(spec(vec![]).violation_decision(), Decision::Allow);
        assert_eq!(
            spec(vec![Action::Redact, Action::Block]).violation_decision(),
            Decision::Deny
        );
        assert_eq!(spec(vec![Action::Block]).severity(), Severity::High);
        assert_eq!(
            spec(vec![Action::Alert {
                severity: Severity::Critical
            }])
            .severity(),
            Severity::Critical
        );
    }

    #[test]
    fn lifecycles_allow_only_forward_moves() {
        assert!(PolicyStatus::Draft.can_become(PolicyStatus::Active));
        assert!(PolicyStatus::Archived.can_become(PolicyStatus::Draft));
        assert!(!PolicyStatus::Archived.can_become(PolicyStatus::Active));
        assert!(ViolationStatus::Open.can_become(ViolationStatus::Acknowledged));
        assert!(!ViolationStatus::Resolved.can_become(ViolationStatus::Open));
        assert!(!ViolationStatus::Open.can_become(ViolationStatus::Open));
    }

    #[test]
    fn actions_parse_from_tagged_json() {
        let a: Vec<Action> = serde_json::from_value(json!([
            {"type": "block"},
            {"type": "alert", "severity": "high"},
            {"type": "notify", "url": "https://hooks.example.com/x"}
        ]))
        .unwrap();
        assert_eq!(
            a[1],
            Action::Alert {
                severity: Severity::High
            }
        );
        assert!(validate_actions(&a).is_ok());
        let notify = |url: &str, secret: Option<&str>| Action::Notify {
            url: url.into(),
            secret: secret.map(str::to_string),
            secret_set: false,
        };
        assert!(validate_actions(&[notify("file:///etc/passwd", None)]).is_err());
        assert!(validate_actions(&[notify("https://h/x", Some("short"))]).is_err());
        assert!(validate_actions(&[notify("https://h/x", Some("0123456789abcdef"))]).is_ok());
    }

    #[test]
    fn notify_secrets_are_write_only_and_kept_across_changes() {
        let with = |secret: Option<&str>, set: bool| Action::Notify {
            url: "https://h/x".into(),
            secret: secret.map(str::to_string),
            secret_set: set,
        };
        let stored = spec(vec![with(Some("0123456789abcdef"), false)]);
        let shown = stored.clone().redacted();
        assert_eq!(shown.actions, vec![with(None, true)]);
        assert!(
            !serde_json::to_string(&shown)
                .unwrap()
                .contains("0123456789abcdef")
        );
        // Sending back what was shown keeps the secret and compares equal to the stored spec.
        let mut back = shown;
        back.keep_secrets(&stored.actions);
        assert_eq!(back, stored);
        // A new secret replaces the old one; another URL does not inherit it.
        let mut other = spec(vec![
            with(Some("fedcba9876543210"), false),
            Action::Notify {
                url: "https://other/y".into(),
                secret: None,
                secret_set: true,
            },
        ]);
        other.keep_secrets(&stored.actions);
        assert_eq!(other.actions[0], with(Some("fedcba9876543210"), false));
        assert_eq!(
            other.actions[1],
            Action::Notify {
                url: "https://other/y".into(),
                secret: None,
                secret_set: false,
            }
        );
    }
}
