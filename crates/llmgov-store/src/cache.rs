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

#[cfg(test)]
mod tests {
    use super::*;

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
