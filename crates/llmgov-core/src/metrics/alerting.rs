//! Alert rules on metrics and the state machine of their alerts.
//!
//! A rule compares an aggregation of a metric over a trailing window (or, for budget rules,
//! spend since the start of the current day or month) with a threshold, per group. A group
//! whose condition holds becomes `pending`; once it has held for the rule's `for` duration the
//! alert is `firing` (and notified); when the condition stops holding a pending alert is
//! dropped and a firing one is `resolved` (and notified). At most one alert per rule and group
//! is active at a time, so a condition that keeps holding is one alert, not many.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

str_enum!(
    /// How a value is compared with a rule's threshold.
    Comparator, "comparator" {
        Gt => "gt",
        Gte => "gte",
        Lt => "lt",
        Lte => "lte",
        Eq => "eq",
        Ne => "ne",
    }
);

impl Comparator {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparator::Gt => value > threshold,
            Comparator::Gte => value >= threshold,
            Comparator::Lt => value < threshold,
            Comparator::Lte => value <= threshold,
            Comparator::Eq => value == threshold,
            Comparator::Ne => value != threshold,
        }
    }
}

str_enum!(
    /// Where an alert is in its life.
    AlertState, "state" {
        Pending => "pending",
        Firing => "firing",
        Resolved => "resolved",
    }
);

/// What a rule's evaluation found for one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// The condition holds with this value.
    Met(f64),
    /// The condition does not hold (value given).
    NotMet(f64),
    /// No data in the window.
    NoData,
}

/// The active (pending or firing) alert of a group, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Active {
    pub state: AlertState,
    /// When the condition started to hold.
    pub since: Timestamp,
}

/// What to do with a group after one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// Nothing changes (the value may be refreshed).
    Stay,
    /// The condition starts to hold: a new pending alert.
    Pend,
    /// Pending long enough, or a rule without `for`: the alert fires (notify).
    Fire,
    /// A pending alert whose condition stopped holding is dropped.
    Cancel,
    /// A firing alert whose condition stopped holding is resolved (notify).
    Resolve,
}

/// The next step of a group's alert. `for_duration` zero fires at once.
pub fn step(
    active: Option<Active>,
    cond: Condition,
    for_duration: Duration,
    now: Timestamp,
) -> Transition {
    let held_long_enough = |since: Timestamp| {
        now - since >= chrono::Duration::from_std(for_duration).unwrap_or(chrono::Duration::MAX)
    };
    match (active.map(|a| (a.state, a.since)), cond) {
        (None, Condition::Met(_)) if for_duration.is_zero() => Transition::Fire,
        (None, Condition::Met(_)) => Transition::Pend,
        (None, _) => Transition::Stay,
        (Some((AlertState::Pending, since)), Condition::Met(_)) if held_long_enough(since) => {
            Transition::Fire
        }
        (Some((AlertState::Pending, _)), Condition::Met(_)) => Transition::Stay,
        (Some((AlertState::Pending, _)), _) => Transition::Cancel,
        (Some((AlertState::Firing, _)), Condition::Met(_)) => Transition::Stay,
        (Some((AlertState::Firing, _)), _) => Transition::Resolve,
        (Some((AlertState::Resolved, _)), _) => Transition::Stay,
    }
}

/// The condition of a group: `value` compared with the threshold (`None`: no data).
pub fn condition(value: Option<f64>, cmp: Comparator, threshold: f64) -> Condition {
    match value {
        None => Condition::NoData,
        Some(v) if cmp.holds(v, threshold) => Condition::Met(v),
        Some(v) => Condition::NotMet(v),
    }
}

str_enum!(
    /// Whose spend a budget rule limits.
    BudgetScope, "scope" {
        Team => "team",
        User => "user",
        Model => "model",
    }
);

str_enum!(
    /// The calendar period of a budget.
    BudgetPeriod, "period" {
        Day => "day",
        Month => "month",
    }
);

/// Start of the current budget period (UTC) at `now`.
pub fn period_start(period: BudgetPeriod, now: Timestamp) -> Timestamp {
    use chrono::{Datelike, TimeZone, Utc};
    let d = now.date_naive();
    let first = match period {
        BudgetPeriod::Day => d,
        BudgetPeriod::Month => d.with_day(1).unwrap_or(d),
    };
    Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// A budget: spend (`llm.cost_usd`, summed) per team, user or model per day or month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub scope: BudgetScope,
    pub period: BudgetPeriod,
    /// US dollars.
    pub limit: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn an_alert_pends_fires_and_resolves() {
        let five_min = Duration::from_secs(300);
        assert_eq!(
            step(None, Condition::Met(9.0), five_min, at(0)),
            Transition::Pend
        );
        let pending = Some(Active {
            state: AlertState::Pending,
            since: at(0),
        });
        assert_eq!(
            step(pending, Condition::Met(9.0), five_min, at(299)),
            Transition::Stay
        );
        assert_eq!(
            step(pending, Condition::Met(9.0), five_min, at(300)),
            Transition::Fire
        );
        assert_eq!(
            step(pending, Condition::NotMet(1.0), five_min, at(100)),
            Transition::Cancel
        );
        assert_eq!(
            step(pending, Condition::NoData, five_min, at(100)),
            Transition::Cancel
        );
        let firing = Some(Active {
            state: AlertState::Firing,
            since: at(0),
        });
        assert_eq!(
            step(firing, Condition::Met(9.0), five_min, at(900)),
            Transition::Stay
        );
        assert_eq!(
            step(firing, Condition::NotMet(1.0), five_min, at(900)),
            Transition::Resolve
        );
        assert_eq!(
            step(firing, Condition::NoData, five_min, at(900)),
            Transition::Resolve
        );
        assert_eq!(
            step(None, Condition::NotMet(1.0), five_min, at(0)),
            Transition::Stay
        );
        assert_eq!(
            step(None, Condition::Met(1.0), Duration::ZERO, at(0)),
            Transition::Fire
        );
    }

    #[test]
    fn comparators_and_conditions() {
        assert!(Comparator::Gt.holds(2.0, 1.0) && !Comparator::Gt.holds(1.0, 1.0));
        assert!(Comparator::Gte.holds(1.0, 1.0) && Comparator::Lte.holds(1.0, 1.0));
        assert!(Comparator::Lt.holds(0.5, 1.0) && Comparator::Ne.holds(0.5, 1.0));
        assert_eq!(condition(None, Comparator::Gt, 1.0), Condition::NoData);
        assert_eq!(
            condition(Some(3.0), Comparator::Gt, 1.0),
            Condition::Met(3.0)
        );
        assert_eq!(
            condition(Some(0.0), Comparator::Gt, 1.0),
            Condition::NotMet(0.0)
        );
        assert!(Comparator::parse("above").is_err());
    }

    #[test]
    fn budget_periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T15:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            period_start(BudgetPeriod::Day, t).to_rfc3339(),
            "2026-11-22T00:00:00+00:00"
        );
        assert_eq!(
            period_start(BudgetPeriod::Month, t).to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
    }
}
