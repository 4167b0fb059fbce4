//! Read-through cache of users, the most-read identity record (every authenticated request
//! that shows or checks a user).
//!
//! Correctness rules:
//! - Every write that changes what `get_user` returns invalidates the user after commit, and
//!   on PostgreSQL also sends `NOTIFY llmgov_cache` inside the transaction, so every instance
//!   evicts it when the write commits.
//! - A reader remembers the cache generation before it reads the database and stores its
//!   result only if no invalidation happened meanwhile (otherwise it might store a value
//!   older than the write that invalidated it).
//! - On PostgreSQL the cache is off until the `LISTEN` connection is up, and is cleared
//!   whenever that connection is re-established (notifications may have been missed).
//! - Entries also expire after `ttl`, bounding staleness if anything above fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use llmgov_core::identity::User;
use llmgov_core::ids::{UserId, WorkspaceId};

/// `NOTIFY` channel of cache invalidations; the payload is a user id or `*` for everything.
pub const CHANNEL: &str = "llmgov_cache";
const MAX_ENTRIES: usize = 100_000;

pub struct UserCache {
    entries: Mutex<HashMap<(WorkspaceId, UserId), (User, Instant)>>,
    generation: AtomicU64,
    enabled: AtomicBool,
    ttl: Duration,
}

impl UserCache {
    pub fn new(enabled: bool, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(enabled),
            ttl,
        }
    }

    pub fn get(&self, ws: WorkspaceId, id: UserId) -> Option<User> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let map = self.entries.lock().expect("user cache lock");
        map.get(&(ws, id))
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(u, _)| u.clone())
    }

    /// Generation to pass to [`UserCache::insert_if`] after reading the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn insert_if(&self, generation: u64, user: &User) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut map = self.entries.lock().expect("user cache lock");
        // Checked under the lock that invalidation also takes: no invalidation slips between.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert((user.workspace_id, user.id), (user.clone(), Instant::now()));
    }

    pub fn invalidate(&self, id: UserId) {
        let mut map = self.entries.lock().expect("user cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|(_, u), _| *u != id);
    }

    pub fn clear(&self) {
        let mut map = self.entries.lock().expect("user cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    /// Applies a `NOTIFY` payload.
    pub fn apply(&self, payload: &str) {
        match uuid::Uuid::parse_str(payload) {
            Ok(id) => self.invalidate(UserId(id)),
            Err(_) => self.clear(),
        }
    }

    pub fn set_enabled(&self, on: bool) {
        self.clear();
        self.enabled.store(on, Ordering::Release);
    }
}

/// Hashes of complete subtrees of the audit logs' Merkle trees, which never change once
/// stored: logs are append-only, a complete subtree's root is fixed when its last leaf is
/// appended, and retention keeps nodes. So there is nothing to invalidate, across instances
/// either. Only nodes of level ≥ [`TreeNodeCache::MIN_LEVEL`] (subtrees of 1,024 entries
/// and more, about 0.1% of all nodes) are kept, loaded for a workspace in one range read on
/// its first proof: a proof at 10 million entries then reads 10 rows instead of 24.
#[derive(Default)]
pub struct TreeNodeCache {
    nodes: Mutex<HashMap<(WorkspaceId, u32, u64), [u8; 32]>>,
    warm: Mutex<std::collections::HashSet<WorkspaceId>>,
}

impl TreeNodeCache {
    pub const MIN_LEVEL: u32 = 10;
    /// Nodes kept (about 80 bytes each) before the cache starts again empty.
    const MAX_NODES: usize = 250_000;
    /// Most nodes loaded when a workspace is warmed (the highest levels first): a log of
    /// 100 million entries has about 200,000 nodes of the cached levels.
    pub const WARM_LIMIT: i64 = 100_000;

    /// True the first time it is asked for `ws` (since the cache was last emptied): the
    /// caller then loads the workspace's upper nodes and hands them to [`Self::keep`].
    pub fn needs_warming(&self, ws: WorkspaceId) -> bool {
        self.warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ws)
    }

    /// The cached hashes among `ids`, and the ids still to read.
    pub fn split(
        &self,
        ws: WorkspaceId,
        ids: &[llmgov_core::merkle::NodeId],
    ) -> (
        HashMap<llmgov_core::merkle::NodeId, [u8; 32]>,
        Vec<llmgov_core::merkle::NodeId>,
    ) {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match nodes.get(&(ws, id.level, id.index)) {
                Some(h) => {
                    found.insert(*id, *h);
                }
                None => missing.push(*id),
            }
        }
        (found, missing)
    }

    /// Remembers nodes read from the database (those of a cached level).
    pub fn keep(&self, ws: WorkspaceId, read: &HashMap<llmgov_core::merkle::NodeId, [u8; 32]>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        for (id, h) in read.iter().filter(|(id, _)| id.level >= Self::MIN_LEVEL) {
            if nodes.len() >= Self::MAX_NODES {
                nodes.clear();
                self.warm.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            nodes.insert((ws, id.level, id.index), *h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_node_cache_keeps_upper_levels_per_workspace() {
        use llmgov_core::merkle::NodeId;
        let c = TreeNodeCache::default();
        let (a, b) = (WorkspaceId::new(), WorkspaceId::new());
        let low = NodeId { level: 3, index: 7 };
        let high = NodeId {
            level: 11,
            index: 2,
        };
        let read = HashMap::from([(low, [1u8; 32]), (high, [2u8; 32])]);
        c.keep(a, &read);
        let (found, missing) = c.split(a, &[low, high]);
        assert_eq!(found, HashMap::from([(high, [2u8; 32])]));
        assert_eq!(missing, vec![low], "lower levels are always read");
        let (found, missing) = c.split(b, &[high]);
        assert!(found.is_empty(), "another workspace's node is not shared");
        assert_eq!(missing, vec![high]);
        assert!(c.needs_warming(a));
        assert!(!c.needs_warming(a), "warmed once");
    }

    fn user(ws: WorkspaceId, id: UserId) -> User {
        let t = llmgov_core::time::now();
        User {
            id,
            workspace_id: ws,
            email: "a@b.co".into(),
            username: "abc".into(),
            first_name: None,
            last_name: None,
            status: llmgov_core::identity::UserStatus::Active,
            roles: vec![],
            metadata: serde_json::json!({}),
            created_at: t,
            updated_at: t,
            last_login_at: None,
        }
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let c = UserCache::new(true, Duration::from_secs(60));
        let (ws, id) = (WorkspaceId::new(), UserId::new());
        let g = c.generation();
        c.invalidate(id);
        c.insert_if(g, &user(ws, id));
        assert!(c.get(ws, id).is_none());
        let g = c.generation();
        c.insert_if(g, &user(ws, id));
        assert!(c.get(ws, id).is_some());
        c.apply(&id.to_string());
        assert!(c.get(ws, id).is_none());
    }

    #[test]
    fn disabled_and_expired_entries_are_not_served() {
        let c = UserCache::new(false, Duration::from_secs(60));
        let (ws, id) = (WorkspaceId::new(), UserId::new());
        c.insert_if(c.generation(), &user(ws, id));
        assert!(c.get(ws, id).is_none());
        let c = UserCache::new(true, Duration::ZERO);
        c.insert_if(c.generation(), &user(ws, id));
        assert!(c.get(ws, id).is_none());
    }
}
