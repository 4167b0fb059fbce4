//! Login throttling: after too many failures for one account or one client address within
//! a window, further attempts are refused until the oldest failure leaves the window.
//! The embedded implementation keeps counters in process; memory is bounded by pruning.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub window: Duration,
    pub max_failures_per_account: usize,
    pub max_failures_per_address: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(900),
            max_failures_per_account: 5,
            max_failures_per_address: 30,
        }
    }
}

const MAX_KEYS: usize = 100_000;

pub struct LoginThrottle {
    cfg: ThrottleConfig,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: Option<&str>) -> [(String, bool); 2] {
        [
            (format!("acct:{account}"), true),
            (format!("addr:{}", address.unwrap_or("-")), false),
        ]
    }

    /// `Some(seconds)` to wait if either the account or the address is over its limit.
    pub fn check(&self, account: &str, address: Option<&str>) -> Option<u64> {
        let now = Instant::now();
        let map = self.failures.lock().expect("throttle lock");
        Self::keys(account, address)
            .iter()
            .filter_map(|(k, is_account)| {
                let q = map.get(k)?;
                let limit = if *is_account {
                    self.cfg.max_failures_per_account
                } else {
                    self.cfg.max_failures_per_address
                };
                let live: Vec<_> = q
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.cfg.window)
                    .collect();
                (live.len() >= limit).then(|| {
                    let oldest = *live[live.len() - limit];
                    (self.cfg.window.saturating_sub(now.duration_since(oldest)))
                        .as_secs()
                        .max(1)
                })
            })
            .max()
    }

    pub fn record_failure(&self, account: &str, address: Option<&str>) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() >= MAX_KEYS {
            let window = self.cfg.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for (k, _) in Self::keys(account, address) {
            let q = map.entry(k).or_default();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.cfg.window)
            {
                q.pop_front();
            }
            q.push_back(now);
            if q.len() > 1000 {
                q.pop_front();
            }
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&format!("acct:{account}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_locks_after_limit_and_success_clears_it() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_failures_per_account: 3,
            ..Default::default()
        });
        for _ in 0..3 {
            assert!(t.check("a", Some("1.1.1.1")).is_none());
            t.record_failure("a", Some("1.1.1.1"));
        }
        assert!(t.check("a", Some("2.2.2.2")).unwrap() > 0);
        assert!(t.check("b", Some("2.2.2.2")).is_none());
        t.record_success("a");
        assert!(t.check("a", Some("2.2.2.2")).is_none());
    }

    #[test]
    fn address_locks_across_accounts() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_failures_per_address: 2,
            ..Default::default()
        });
        t.record_failure("a", Some("9.9.9.9"));
        t.record_failure("b", Some("9.9.9.9"));
        assert!(t.check("c", Some("9.9.9.9")).is_some());
        assert!(t.check("c", Some("8.8.8.8")).is_none());
    }
}
