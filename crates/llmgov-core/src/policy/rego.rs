//! Rego policies compiled and evaluated in-process with `regorus`.
//!
//! Convention (documented in the README): a policy declares `package llmgov`; every rule
//! whose name is `deny` or starts with `deny_` is a set of violations. An element is a
//! message string or an object with `msg` (or `message`) and optional `severity`, `match`
//! (text to redact, or a list of them) and any other fields, kept as details. Platform
//! facts are under `data.platform` (see [`super::facts`]).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, LimitError, Value};
use serde_json::Map;

use crate::CoreError;

use super::model::Severity;

/// The package every policy declares.
pub const PACKAGE: &str = "llmgov";
/// Work units between two clock reads while evaluating.
const TIMER_CHECK_INTERVAL: u32 = 64;
/// Characters of a violation message kept.
const MAX_MESSAGE: usize = 1000;
/// Violations kept from one policy evaluation.
const MAX_VIOLATIONS: usize = 100;

/// Why a source does not compile, with the position regorus reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl From<CompileError> for CoreError {
    fn from(e: CompileError) -> Self {
        let mut details = serde_json::Map::new();
        if let Some(l) = e.line {
            details.insert("line".into(), l.into());
        }
        if let Some(c) = e.column {
            details.insert("column".into(), c.into());
        }
        CoreError::Unprocessable {
            code: "POLICY_INVALID",
            message: e.message,
            details,
        }
    }
}

/// A compiled policy, ready to evaluate many times (clones share the parsed modules).
#[derive(Clone)]
pub struct CompiledPolicy {
    engine: Engine,
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledPolicy")
    }
}

/// Builtins that can allocate without bound in one call, before the timer can stop them.
const REFUSED_BUILTINS: &[&str] = &["numbers.range", "numbers.range_step"];

/// Parses and checks `source`: it must declare `package llmgov` and at least one `deny`
/// rule, and use no builtin that could exhaust memory.
pub fn compile(source: &str) -> Result<CompiledPolicy, CompileError> {
    let mut engine = Engine::new();
    engine.set_strict_builtin_errors(false);
    add_builtins(&mut engine).map_err(|e| compile_error(&e.to_string()))?;
    let package = engine
        .add_policy("policy.rego".into(), source.to_string())
        .map_err(|e| compile_error(&e.to_string()))?;
    if package != format!("data.{PACKAGE}") {
        return Err(CompileError {
            message: format!("the policy must declare `package {PACKAGE}` (found `{package}`)"),
            line: None,
            column: None,
        });
    }
    for (n, line) in source.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        if let Some(b) = REFUSED_BUILTINS.iter().find(|b| code.contains(*b)) {
            return Err(CompileError {
                message: format!("builtin {b} is not allowed: it can allocate without bound"),
                line: Some(n as u32 + 1),
                column: code.find(b).map(|c| c as u32 + 1),
            });
        }
    }
    let has_deny = source.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("deny ") || l.starts_with("deny_") || l.starts_with("deny[")
    });
    if !has_deny {
        return Err(CompileError {
            message: "the policy declares no `deny` rule (`deny contains msg if { ... }`)".into(),
            line: None,
            column: None,
        });
    }
    Ok(CompiledPolicy { engine })
}

/// Texts longer than this are not scanned by `llmgov.pii` (inputs are limited anyway).
const MAX_PII_TEXT: usize = 1 << 20;

/// The platform's own builtins:
/// - `llmgov.pii(text)`: the PII engine's findings in `text` (built-in settings), each
///   `{"type", "start", "end", "score", "recognizer", "text"}` with code-point offsets.
fn add_builtins(engine: &mut Engine) -> anyhow::Result<()> {
    engine.add_extension(
        "llmgov.pii".into(),
        1,
        Box::new(|params: Vec<Value>| {
            let text = params[0]
                .as_string()
                .map_err(|_| anyhow::anyhow!("llmgov.pii expects a string"))?;
            if text.len() > MAX_PII_TEXT {
                anyhow::bail!("llmgov.pii: the text is longer than {MAX_PII_TEXT} bytes");
            }
            let chars: Vec<char> = text.chars().collect();
            let found: Vec<serde_json::Value> = pii_scanner()
                .scan(text)
                .into_iter()
                .map(|e| {
                    serde_json::json!({
                        "type": e.kind.as_str(), "start": e.start, "end": e.end,
                        "score": (e.score * 100.0).round() / 100.0, "recognizer": e.recognizer,
                        "text": chars[e.start..e.end].iter().collect::<String>(),
                    })
                })
                .collect();
            Ok(Value::from(serde_json::Value::Array(found)))
        }),
    )
}

fn pii_scanner() -> &'static llmgov_pii::Scanner {
    static S: std::sync::OnceLock<llmgov_pii::Scanner> = std::sync::OnceLock::new();
    S.get_or_init(llmgov_pii::Scanner::default)
}

/// Pulls `line:col` out of a regorus message (`policy.rego:3:7: error: ...`).
fn compile_error(text: &str) -> CompileError {
    let pos = text
        .find("policy.rego:")
        .map(|i| &text[i + "policy.rego:".len()..]);
    let mut nums = pos
        .into_iter()
        .flat_map(|p| p.split(':').take(2))
        .map(|n| n.trim().parse::<u32>().ok());
    let line = nums.next().flatten();
    let column = nums.next().flatten();
    // The first line of regorus's message is the useful part; the rest is a source excerpt.
    let message = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the policy does not compile")
        .trim()
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    CompileError {
        message,
        line,
        column,
    }
}

/// One violation a rule produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleViolation {
    /// The rule (`deny`, `deny_pii`, ...).
    pub rule: String,
    #[serde(rename = "message")]
    pub message: String,
    /// Severity the rule set, if any (else the policy's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Text the rule asks to redact.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    /// Other fields of the violation object.
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Map<String, serde_json::Value>,
}

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    TimeLimit(Duration),
    Failed(String),
}

impl From<EvalError> for CoreError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::TimeLimit(limit) => CoreError::Unprocessable {
                code: "POLICY_EVALUATION_TIMEOUT",
                message: format!(
                    "the policy did not finish within its time limit of {} ms",
                    limit.as_millis()
                ),
                details: Map::new(),
            },
            EvalError::Failed(m) => CoreError::Unprocessable {
                code: "POLICY_EVALUATION_FAILED",
                message: m,
                details: Map::new(),
            },
        }
    }
}

impl CompiledPolicy {
    /// Evaluates the policy on `input` with platform `data`, stopping after `limit`.
    /// Returns the violations and the time it took.
    pub fn evaluate(
        &self,
        input: &serde_json::Value,
        data: &serde_json::Value,
        limit: Duration,
    ) -> Result<(Vec<RuleViolation>, Duration), EvalError> {
        let doc = RegoDocs::new(input, data)?;
        self.evaluate_docs(&doc, limit)
    }

    /// [`Self::evaluate`] with input and data already converted, so that several policies
    /// evaluated on one input share the conversion.
    pub fn evaluate_docs(
        &self,
        docs: &RegoDocs,
        limit: Duration,
    ) -> Result<(Vec<RuleViolation>, Duration), EvalError> {
        let started = Instant::now();
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit,
            check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).expect("non-zero"),
        });
        engine.set_input(docs.input.clone());
        engine
            .add_data(docs.data.clone())
            .map_err(|e| EvalError::Failed(format!("platform data rejected: {e}")))?;
        let result = engine
            .eval_query(format!("data.{PACKAGE}"), false)
            .map_err(|e| match e.downcast_ref::<LimitError>() {
                Some(LimitError::TimeLimitExceeded { .. }) => EvalError::TimeLimit(limit),
                _ if started.elapsed() >= limit => EvalError::TimeLimit(limit),
                _ => EvalError::Failed(first_line(&e.to_string())),
            })?;
        let doc = match result.result.first().and_then(|r| r.expressions.first()) {
            Some(e) => serde_json::to_value(&e.value)
                .map_err(|e| EvalError::Failed(format!("unreadable result: {e}")))?,
            None => serde_json::Value::Null,
        };
        Ok((violations(&doc), started.elapsed()))
    }
}

/// An input document and the platform data as Rego values (cheap to clone).
pub struct RegoDocs {
    input: Value,
    data: Value,
}

impl RegoDocs {
    pub fn new(input: &serde_json::Value, platform: &serde_json::Value) -> Result<Self, EvalError> {
        Ok(Self {
            input: to_value(input)?,
            data: to_value(&serde_json::json!({ "platform": platform }))?,
        })
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or(s)
        .chars()
        .take(MAX_MESSAGE)
        .collect()
}

fn to_value(v: &serde_json::Value) -> Result<Value, EvalError> {
    Value::from_json_str(&v.to_string()).map_err(|e| EvalError::Failed(e.to_string()))
}

/// Collects violations from every `deny`/`deny_*` rule of the package document.
fn violations(doc: &serde_json::Value) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let Some(rules) = doc.as_object() else {
        return out;
    };
    for (rule, value) in rules {
        if rule != "deny" && !rule.starts_with("deny_") {
            continue;
        }
        let items: Vec<&serde_json::Value> = match value {
            serde_json::Value::Array(a) => a.iter().collect(),
            // A boolean rule (`deny_x if ...`) is one violation when true.
            serde_json::Value::Bool(true) => vec![value],
            serde_json::Value::String(_) | serde_json::Value::Object(_) => vec![value],
            _ => continue,
        };
        for item in items {
            if out.len() == MAX_VIOLATIONS {
                return out;
            }
            out.push(violation(rule, item));
        }
    }
    out
}

fn violation(rule: &str, item: &serde_json::Value) -> RuleViolation {
    let mut v = RuleViolation {
        rule: rule.to_string(),
        message: format!("violated {rule}"),
        severity: None,
        matches: Vec::new(),
        details: Map::new(),
    };
    match item {
        serde_json::Value::String(s) => v.message = s.chars().take(MAX_MESSAGE).collect(),
        serde_json::Value::Object(o) => {
            for (k, val) in o {
                match (k.as_str(), val) {
                    ("msg" | "message", serde_json::Value::String(s)) => {
                        v.message = s.chars().take(MAX_MESSAGE).collect();
                    }
                    ("severity", serde_json::Value::String(s)) => {
                        v.severity = Severity::parse(s).ok();
                    }
                    ("match", serde_json::Value::String(s)) => v.matches.push(s.clone()),
                    ("match" | "matches", serde_json::Value::Array(a)) => v
                        .matches
                        .extend(a.iter().filter_map(|m| m.as_str().map(String::from))),
                    _ => {
                        v.details.insert(k.clone(), val.clone());
                    }
                }
            }
        }
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: Duration = Duration::from_millis(200);

    #[test]
    fn deny_rules_become_violations_named_by_rule() {
        let p = compile(
            r#"package llmgov

deny contains "model not allowed" if input.model == "bad"

deny_tokens contains {"msg": "too many tokens", "severity": "high", "limit": 10} if input.tokens > 10
"#,
        )
        .unwrap();
        let (v, _) = p
            .evaluate(&json!({"model": "bad", "tokens": 11}), &json!({}), LIMIT)
            .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].rule, "deny");
        assert_eq!(v[0].message, "model not allowed");
        assert_eq!(v[1].rule, "deny_tokens");
        assert_eq!(v[1].severity, Some(Severity::High));
        assert_eq!(v[1].details["limit"], json!(10));
        let (v, _) = p
            .evaluate(&json!({"model": "ok", "tokens": 1}), &json!({}), LIMIT)
            .unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn compile_errors_carry_a_position() {
        let e = compile("package llmgov\n\ndeny contains msg if {\n  msg := \n}\n").unwrap_err();
        assert!(e.line.is_some(), "{e:?}");
        let e = compile("package other\ndeny contains 1 if true\n").unwrap_err();
        assert!(e.message.contains("package llmgov"), "{e:?}");
        let e = compile("package llmgov\nallow if true\n").unwrap_err();
        assert!(e.message.contains("deny"), "{e:?}");
        let e =
            compile("package llmgov\ndeny contains x if { some x in numbers.range(1, 1e12) }\n")
                .unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
    }

    #[test]
    fn a_policy_that_runs_too_long_is_stopped() {
        let p = compile(
            r#"package llmgov

deny contains x if {
  some a in input.xs
  some b in input.xs
  some c in input.xs
  x := a + b + c
  x < 0
}
"#,
        )
        .unwrap();
        let xs: Vec<u32> = (0..400).collect();
        let err = p
            .evaluate(&json!({ "xs": xs }), &json!({}), Duration::from_millis(20))
            .unwrap_err();
        assert_eq!(err, EvalError::TimeLimit(Duration::from_millis(20)));
    }

    #[test]
    fn platform_data_is_readable() {
        let p =
            compile("package llmgov\ndeny contains \"over budget\" if data.platform.spend >= 0\n")
                .unwrap();
        let (v, _) = p.evaluate(&json!({}), &json!({"spend": 0}), LIMIT).unwrap();
        assert_eq!(v.len(), 1, "spend >= limit at a limit of 0");
    }
}
