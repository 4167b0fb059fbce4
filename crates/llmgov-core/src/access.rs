//! Permissions (`resource:action`) and the predefined roles.
//!
//! Predefined roles live in code, not in the database, so an upgrade that adds a permission
//! to a role applies everywhere at once and nobody can edit them through the API.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }
        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($s => Ok($name::$variant),)* _ => Err(()) }
            }
        }
    };
}

string_enum!(
    /// What a permission is about.
    Resource {
        Policies => "policies",
        Metrics => "metrics",
        Audit => "audit",
        Users => "users",
        Roles => "roles",
        Settings => "settings",
        Datasets => "datasets",
        Keys => "keys",
        Workspaces => "workspaces",
        Pii => "pii",
    }
);

string_enum!(
    /// What may be done to a resource.
    Action {
        Create => "create",
        Read => "read",
        Update => "update",
        Delete => "delete",
        Execute => "execute",
    }
);

/// One `resource:action` pair. Once constructed it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Self { resource, action }
    }

    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let bad = || {
            CoreError::invalid(
                "permissions",
                format!("unknown permission '{}'", truncate(s, 64)),
            )
        };
        let (r, a) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            resource: r.parse().map_err(|_| bad())?,
            action: a.parse().map_err(|_| bad())?,
        })
    }

    /// Every permission that exists, in a stable order.
    pub fn all() -> impl Iterator<Item = Permission> {
        Resource::ALL
            .iter()
            .flat_map(|r| Action::ALL.iter().map(move |a| Permission::new(*r, *a)))
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.action.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Permission::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of permissions, as held by a principal: one bit per `resource:action`, so checking
/// and copying it costs nothing on the request path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u64);

const _: () = assert!(
    Resource::ALL.len() * Action::ALL.len() <= 64,
    "permissions must fit in a u64"
);

fn bit(p: Permission) -> u64 {
    1u64 << ((p.resource as u32) * Action::ALL.len() as u32 + p.action as u32)
}

impl PermissionSet {
    pub fn contains(&self, p: Permission) -> bool {
        self.0 & bit(p) != 0
    }
    pub fn is_superset(&self, other: &PermissionSet) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersection(&self, other: &PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }
    pub fn extend(&mut self, other: impl IntoIterator<Item = Permission>) {
        for p in other {
            self.0 |= bit(p);
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::all().filter(|p| self.contains(*p))
    }
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// Permission strings in alphabetical order.
    pub fn to_strings(&self) -> Vec<String> {
        let mut v: Vec<String> = self.iter().map(|p| p.to_string()).collect();
        v.sort();
        v
    }
    pub fn parse_all<S: AsRef<str>>(items: &[S]) -> Result<Self, CoreError> {
        items
            .iter()
            .map(|s| Permission::parse(s.as_ref()))
            .collect()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        PermissionSet::parse_all(&items).map_err(serde::de::Error::custom)
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = PermissionSet::default();
        s.extend(iter);
        s
    }
}

/// The predefined roles (seed 000 §7.2.2, plus the vault's data roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredefinedRole {
    pub name: &'static str,
    pub description: &'static str,
    /// Stable id so that predefined roles have the same id on every installation.
    pub id: uuid::Uuid,
    grants: &'static [(Resource, &'static [Action])],
}

use Action::*;
use Resource::*;

const CRUDX: &[Action] = &[Create, Read, Update, Delete, Execute];
const ALL_ACTIONS: &[Action] = Action::ALL;

pub const PREDEFINED_ROLES: &[PredefinedRole] = &[
    PredefinedRole {
        name: "super_admin",
        description: "Full system access: workspaces, users, roles, settings and every resource.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0001),
        grants: &[
            (Policies, ALL_ACTIONS),
            (Metrics, ALL_ACTIONS),
            (Audit, ALL_ACTIONS),
            (Users, ALL_ACTIONS),
            (Roles, ALL_ACTIONS),
            (Settings, ALL_ACTIONS),
            (Datasets, ALL_ACTIONS),
            (Keys, ALL_ACTIONS),
            (Workspaces, ALL_ACTIONS),
            (Pii, ALL_ACTIONS),
        ],
    },
    PredefinedRole {
        name: "admin",
        description: "Manages policies and users of a workspace; reads metrics and the audit trail.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0002),
        grants: &[
            (Policies, CRUDX),
            (Users, &[Create, Read, Update]),
            (Roles, &[Read]),
            (Metrics, &[Read]),
            (Audit, &[Read]),
            (Settings, &[Read]),
            (Datasets, &[Read]),
            (Keys, &[Create, Read, Delete]),
            (Pii, &[Execute, Update]),
        ],
    },
    PredefinedRole {
        name: "policy_manager",
        description: "Writes and evaluates policies and manages their violations.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0003),
        grants: &[(Policies, CRUDX), (Metrics, &[Read]), (Pii, &[Execute])],
    },
    PredefinedRole {
        name: "auditor",
        description: "Reads the audit trail, compliance reports, policies and metrics.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0004),
        grants: &[(Audit, &[Read]), (Policies, &[Read]), (Metrics, &[Read])],
    },
    PredefinedRole {
        name: "viewer",
        description: "Views dashboards, metrics, policies and dataset metadata.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0005),
        grants: &[(Metrics, &[Read]), (Policies, &[Read]), (Datasets, &[Read])],
    },
    PredefinedRole {
        name: "data_owner",
        description: "Owns Data Vault datasets: creates, shares, anonymizes and deletes them.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0006),
        grants: &[
            (Datasets, CRUDX),
            (Keys, &[Create, Read, Delete]),
            (Policies, &[Read]),
            (Metrics, &[Read]),
            (Pii, &[Execute, Read, Update]),
        ],
    },
    PredefinedRole {
        name: "data_scientist",
        description: "Pushes and pulls Data Vault datasets and their anonymized exports.",
        id: uuid::Uuid::from_u128(0x6c6d_676f_7600_0000_0000_0000_0000_0007),
        grants: &[
            (Datasets, &[Create, Read, Update, Execute]),
            (Keys, &[Create, Read, Delete]),
            (Policies, &[Read]),
            (Metrics, &[Read]),
            (Pii, &[Execute]),
        ],
    },
];

impl PredefinedRole {
    pub fn find(name: &str) -> Option<&'static PredefinedRole> {
        PREDEFINED_ROLES.iter().find(|r| r.name == name)
    }

    pub fn permissions(&self) -> PermissionSet {
        self.grants
            .iter()
            .flat_map(|(r, acts)| acts.iter().map(move |a| Permission::new(*r, *a)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_round_trips_through_text() {
        for p in Permission::all() {
            assert_eq!(Permission::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn malformed_permissions_are_rejected() {
        for s in [
            "",
            "users",
            "users:",
            ":read",
            "users:fly",
            "USERS:read",
            "users:read:x",
        ] {
            assert!(Permission::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn super_admin_holds_every_permission() {
        let sa = PredefinedRole::find("super_admin").unwrap().permissions();
        assert!(Permission::all().all(|p| sa.contains(p)));
    }

    #[test]
    fn viewer_cannot_create_users_and_auditor_reads_audit() {
        let viewer = PredefinedRole::find("viewer").unwrap().permissions();
        assert!(!viewer.contains(Permission::new(Users, Create)));
        let auditor = PredefinedRole::find("auditor").unwrap().permissions();
        assert!(auditor.contains(Permission::new(Audit, Read)));
        assert!(!auditor.contains(Permission::new(Audit, Delete)));
    }

    #[test]
    fn permission_sets_behave_as_sets() {
        let a = PermissionSet::parse_all(&["users:read", "audit:read", "users:read"]).unwrap();
        assert_eq!(a.len(), 2);
        let b = PermissionSet::parse_all(&["users:read"]).unwrap();
        assert!(a.is_superset(&b) && !b.is_superset(&a));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(a.to_strings(), ["audit:read", "users:read"]);
        let all: PermissionSet = Permission::all().collect();
        assert_eq!(all.len(), Resource::ALL.len() * Action::ALL.len());
        assert_eq!(
            serde_json::from_value::<PermissionSet>(serde_json::to_value(a).unwrap()).unwrap(),
            a
        );
    }

    #[test]
    fn every_other_role_is_a_subset_of_super_admin() {
        let sa = PREDEFINED_ROLES[0].permissions();
        for r in PREDEFINED_ROLES {
            assert!(sa.is_superset(&r.permissions()), "{}", r.name);
        }
    }
}
