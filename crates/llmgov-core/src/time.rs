//! Timestamps are kept at microsecond precision: that is what PostgreSQL stores, so a value
//! written and read back is identical and hashes the same.

use chrono::{DateTime, SubsecRound, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// `t` at the precision timestamps are kept at (microseconds).
pub fn trunc(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

/// Microseconds since the Unix epoch (how metric points are stored).
pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// The timestamp of `micros` since the Unix epoch (clamped to the representable range).
pub fn from_micros(micros: i64) -> Timestamp {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MAX_UTC)
}
