//! Record filters for `GET .../records?filter=`: conditions joined by `,` (all must hold),
//! each `PATH OP VALUE`. A path names a field by dots (`meta.model`), an array element by
//! its index (`messages.0.role`) or any element by `*` (`messages.*.content`). Operators:
//! `=` and `!=` (equal as JSON when the value parses as JSON, else as text), `~` (the text
//! contains the value, ignoring case), `>`, `>=`, `<`, `<=` (numbers), and a bare `PATH`
//! (the field exists and is not null).

use serde_json::Value;

use crate::{CoreError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
}

#[derive(Debug, Clone)]
struct Cond {
    path: Vec<String>,
    op: Op,
    value: Value,
    /// The value as written, and lower-cased (for `~`).
    raw: String,
    text: String,
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub struct Filter {
    conds: Vec<Cond>,
}

const MAX_CONDITIONS: usize = 16;

fn bad(m: impl Into<String>) -> CoreError {
    CoreError::invalid("filter", m)
}

impl Filter {
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() > 2000 {
            return Err(bad("a filter has at most 2,000 characters"));
        }
        let mut conds = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // The first operator character splits path from value (paths hold none).
            let at = part.find(['=', '!', '~', '>', '<']);
            let (path, op, value) = match at {
                None => (part, Op::Exists, ""),
                Some(i) => {
                    let rest = &part[i..];
                    let (op, len) = if rest.starts_with("!=") {
                        (Op::Ne, 2)
                    } else if rest.starts_with(">=") {
                        (Op::Ge, 2)
                    } else if rest.starts_with("<=") {
                        (Op::Le, 2)
                    } else if rest.starts_with('=') {
                        (Op::Eq, 1)
                    } else if rest.starts_with('~') {
                        (Op::Contains, 1)
                    } else if rest.starts_with('>') {
                        (Op::Gt, 1)
                    } else if rest.starts_with('<') {
                        (Op::Lt, 1)
                    } else {
                        return Err(bad(format!("{part:?}: unknown operator")));
                    };
                    (&part[..i], op, &rest[len..])
                }
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(bad(format!("{part:?}: an empty field name")));
            }
            let value = value.trim();
            let json = serde_json::from_str::<Value>(value).unwrap_or(Value::String(value.into()));
            if matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le) && !json.is_number() {
                return Err(bad(format!("{part:?}: compares with a number")));
            }
            conds.push(Cond {
                path,
                op,
                text: value.to_lowercase(),
                raw: value.to_string(),
                value: json,
            });
        }
        if conds.is_empty() {
            return Err(bad("an empty filter"));
        }
        if conds.len() > MAX_CONDITIONS {
            return Err(bad(format!("at most {MAX_CONDITIONS} conditions")));
        }
        Ok(Self { conds })
    }

    pub fn matches(&self, record: &Value) -> bool {
        self.conds.iter().all(|c| {
            let mut found = vec![];
            collect(record, &c.path, &mut found);
            match c.op {
                Op::Exists => found.iter().any(|v| !v.is_null()),
                // Not equal: no value found equals it.
                Op::Ne => !found.iter().any(|v| equal(v, c)),
                _ => found.iter().any(|v| test(v, c)),
            }
        })
    }
}

fn collect<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(head) {
                collect(x, rest, out);
            }
        }
        Value::Array(a) if head == "*" => {
            for x in a {
                collect(x, rest, out);
            }
        }
        Value::Array(a) => {
            if let Some(x) = head.parse::<usize>().ok().and_then(|i| a.get(i)) {
                collect(x, rest, out);
            }
        }
        _ => {}
    }
}

fn equal(v: &Value, c: &Cond) -> bool {
    match (v, &c.value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        // A CSV field is text: `n=3` matches "3".
        (Value::String(a), b) if !b.is_string() => *a == c.raw,
        (a, b) => a == b,
    }
}

fn test(v: &Value, c: &Cond) -> bool {
    let num = || match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let want = c.value.as_f64();
    match c.op {
        Op::Eq => equal(v, c),
        Op::Contains => match v {
            Value::String(s) => s.to_lowercase().contains(&c.text),
            Value::Null => false,
            other => other.to_string().to_lowercase().contains(&c.text),
        },
        Op::Gt => matches!((num(), want), (Some(a), Some(b)) if a > b),
        Op::Ge => matches!((num(), want), (Some(a), Some(b)) if a >= b),
        Op::Lt => matches!((num(), want), (Some(a), Some(b)) if a < b),
        Op::Le => matches!((num(), want), (Some(a), Some(b)) if a <= b),
        Op::Ne | Op::Exists => unreachable!("handled by the caller"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_match_paths_wildcards_and_types() {
        let r = json!({"id": 7, "lang": "en", "score": "0.9",
            "messages": [{"role": "user", "content": "I want a REFUND"}, {"role": "assistant", "content": "ok"}],
            "meta": {"model": "gpt-4o", "tags": null}});
        let yes = [
            "id=7",
            "id>=7,id<8",
            "lang=en",
            "lang=\"en\"",
            "messages.0.role=user",
            "messages.*.content~refund",
            "messages.*.role=assistant",
            "meta.model~GPT",
            "score>0.5",
            "lang!=fr",
            "meta.model",
        ];
        for f in yes {
            assert!(Filter::parse(f).unwrap().matches(&r), "{f}");
        }
        let no = [
            "id=8",
            "id>7",
            "messages.1.role=user",
            "messages.*.content~cancel",
            "meta.tags",
            "missing",
            "lang!=en",
            "id=7,lang=fr",
        ];
        for f in no {
            assert!(!Filter::parse(f).unwrap().matches(&r), "{f}");
        }
        for bad in ["", ",", "a.=1", "x>abc", ".a=1"] {
            assert!(Filter::parse(bad).is_err(), "{bad:?}");
        }
        // CSV rows are text: numbers compare with their text.
        let row = json!({"id": "3", "n": "12"});
        assert!(Filter::parse("id=3,n>10").unwrap().matches(&row));
    }
}
