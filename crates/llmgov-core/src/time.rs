//! Timestamps are kept at microsecond precision: that is what PostgreSQL stores, so a value
//! written and read back is identical and hashes the same.

use chrono::{DateTime, SubsecRound, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}
