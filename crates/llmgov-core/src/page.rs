//! List parameters shared by every list endpoint: `?page=&limit=&sort=a:desc,b:asc&fields=`.
//! Sort fields are checked against a per-resource allow-list, so a sort key can never reach
//! SQL unless it is a known column.

use serde::Serialize;

use crate::CoreError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }
}

/// One validated sort key: `column` is one of the allowed `&'static str`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: &'static str,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based.
    pub page: u32,
    pub limit: u32,
    pub sort: Vec<SortKey>,
}

impl ListQuery {
    /// Parses raw query values. `allowed_sort` lists the sortable fields; `default_sort` is
    /// used when none is given so that pages are stable.
    pub fn parse(
        page: Option<&str>,
        limit: Option<&str>,
        sort: Option<&str>,
        allowed_sort: &[&'static str],
        default_sort: SortKey,
    ) -> Result<Self, CoreError> {
        let page = match page {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| (1..=1_000_000).contains(p))
                .ok_or_else(|| {
                    CoreError::invalid("page", "page must be an integer from 1 to 1000000")
                })?,
        };
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    CoreError::invalid(
                        "limit",
                        format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let mut keys = Vec::new();
        if let Some(sort) = sort.filter(|s| !s.is_empty()) {
            for part in sort.split(',') {
                let (field, dir) = part.split_once(':').unwrap_or((part, "asc"));
                let direction = match dir {
                    "asc" => Direction::Asc,
                    "desc" => Direction::Desc,
                    _ => {
                        return Err(CoreError::invalid(
                            "sort",
                            "sort direction must be asc or desc",
                        ));
                    }
                };
                let column = allowed_sort
                    .iter()
                    .copied()
                    .find(|c| *c == field)
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "sort",
                            format!(
                                "cannot sort by that field; sortable: {}",
                                allowed_sort.join(", ")
                            ),
                        )
                    })?;
                if keys.iter().any(|k: &SortKey| k.column == column) {
                    return Err(CoreError::invalid("sort", "a field appears twice in sort"));
                }
                keys.push(SortKey { column, direction });
            }
        }
        if keys.is_empty() {
            keys.push(default_sort);
        }
        Ok(Self {
            page,
            limit,
            sort: keys,
        })
    }

    pub fn offset(&self) -> i64 {
        (self.page as i64 - 1) * self.limit as i64
    }

    /// `ORDER BY` body built only from allow-listed columns, with `id` as the tie-breaker.
    pub fn order_by(&self, table_alias: &str) -> String {
        let mut parts: Vec<String> = self
            .sort
            .iter()
            .map(|k| format!("{table_alias}{} {}", k.column, k.direction.sql()))
            .collect();
        if !self.sort.iter().any(|k| k.column == "id") {
            parts.push(format!("{table_alias}id ASC"));
        }
        parts.join(", ")
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page: 1,
            limit: DEFAULT_LIMIT,
            sort: vec![SortKey {
                column: "created_at",
                direction: Direction::Asc,
            }],
        }
    }
}

/// One page of results.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub limit: u32,
    pub has_more: bool,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, q: &ListQuery) -> Self {
        let has_more = q.offset() + (items.len() as i64) < total;
        Self {
            items,
            total,
            page: q.page,
            limit: q.limit,
            has_more,
        }
    }
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            limit: self.limit,
            has_more: self.has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: SortKey = SortKey {
        column: "created_at",
        direction: Direction::Asc,
    };

    #[test]
    fn defaults_and_bounds() {
        let q = ListQuery::parse(None, None, None, &["created_at"], DEF).unwrap();
        assert_eq!((q.page, q.limit), (1, DEFAULT_LIMIT));
        for bad in ["0", "-1", "x", "1e3", "201"] {
            assert!(
                ListQuery::parse(None, Some(bad), None, &[], DEF).is_err(),
                "{bad}"
            );
        }
        assert!(ListQuery::parse(Some("0"), None, None, &[], DEF).is_err());
    }

    #[test]
    fn sort_accepts_only_allowed_columns() {
        let q = ListQuery::parse(
            None,
            None,
            Some("email:desc,created_at"),
            &["email", "created_at"],
            DEF,
        )
        .unwrap();
        assert_eq!(q.order_by("u."), "u.email DESC, u.created_at ASC, u.id ASC");
        assert!(
            ListQuery::parse(None, None, Some("email; DROP TABLE users"), &["email"], DEF).is_err()
        );
        assert!(ListQuery::parse(None, None, Some("email:sideways"), &["email"], DEF).is_err());
    }

    #[test]
    fn has_more_is_exact() {
        let q = ListQuery::parse(Some("2"), Some("10"), None, &[], DEF).unwrap();
        assert!(Page::new(vec![0; 10], 21, &q).has_more);
        assert!(!Page::new(vec![0; 10], 20, &q).has_more);
    }
}
