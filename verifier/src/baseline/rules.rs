//! Rules: one expectation about the claims that match one name pattern, and how a claim's
//! value is judged against it. Nothing here knows what a PCR or a GPU is.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::claims::Value;

/// The AR4SI trustworthiness claim a rule speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    InstanceIdentity,
    Configuration,
    Executables,
    FileSystem,
    Hardware,
    RuntimeOpaque,
    StorageOpaque,
    SourcedData,
}

/// What a failed rule means for its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Contraindicated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Equals(Value),
    /// The value (text, digest, number) is one of these.
    OneOf(Vec<String>),
    /// The value is none of these (a deny list).
    NoneOf(Vec<String>),
    /// A dotted version at least this one.
    MinVersion(String),
    /// Text matching one of these glob patterns (`*` any run, `?` one character).
    Matches(Vec<String>),
    /// A list value containing every one of these.
    Contains(Vec<String>),
    /// A number at most this.
    AtMost(i64),
    /// An IMA measurement the allow-list (or a trusted file signature) allows.
    ImaAllowed(super::ima::ImaPolicy),
    /// An IMA measurement of this file with an allowed digest.
    ImaRequired(super::ima::RequiredFile),
}

/// How the claims a rule matches combine into its results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantifier {
    /// Each matching claim must meet it; one result per claim (PCRs, GPUs).
    #[default]
    Each,
    /// Each matching claim must meet it; passes are summarised in one result and failures
    /// listed (thousands of IMA measurements). No matching claim is a pass: nothing to judge.
    All,
    /// At least one matching claim must meet it (a required file).
    Any,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Equals(v) => write!(f, "= {v}"),
            Expect::OneOf(v) if v.len() == 1 => write!(f, "= {}", v.join("")),
            Expect::OneOf(v) => write!(f, "one of [{}]", v.join(", ")),
            Expect::NoneOf(v) => write!(f, "none of [{}]", v.join(", ")),
            Expect::MinVersion(v) => write!(f, ">= {v}"),
            Expect::Matches(v) => write!(f, "matches [{}]", v.join(", ")),
            Expect::Contains(v) => write!(f, "contains [{}]", v.join(", ")),
            Expect::AtMost(v) => write!(f, "<= {v}"),
            Expect::ImaAllowed(policy) => write!(
                f,
                "allowed by the IMA policy ({} paths, {} excludes, {} keys)",
                policy.allow.len(),
                policy.exclude.len() + policy.exclude_regex.len(),
                policy.keys.len()
            ),
            Expect::ImaRequired(required) if required.digests.is_empty() => {
                write!(f, "{} measured", required.path)
            }
            Expect::ImaRequired(required) => write!(
                f,
                "{} measured with one of [{}]",
                required.path,
                required.digests.join(", ")
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable name, unique within the baseline: `pcr.sha256.7`, `gpu.min_driver_version`.
    pub id: String,
    /// Claim name pattern (`gpu[*].driver_version`): every matching claim must satisfy it.
    pub claim: String,
    pub expect: Expect,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    #[serde(default)]
    pub quantifier: Quantifier,
    /// For a GPU rule: only the devices of this vendor (`gpu[N].vendor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

/// Judges one claim value: `Ok(None)` met, `Ok(Some(why))` not met (`why` empty when the
/// value says it all), `Err` the value cannot be judged (wrong type).
pub fn judge_with_reason(expect: &Expect, value: &Value) -> Result<Option<String>, String> {
    match (expect, value) {
        (Expect::ImaAllowed(policy), Value::Measurement(m)) => Ok(policy.judge(m).err()),
        (Expect::ImaRequired(required), Value::Measurement(m)) => Ok(required.judge(m).err()),
        (Expect::ImaAllowed(_) | Expect::ImaRequired(_), other) => Err(format!(
            "expected an IMA measurement, the claim is a {}",
            kind(other)
        )),
        _ => judge(expect, value).map(|met| (!met).then(String::new)),
    }
}

/// Judges one claim value. `Err` says why the value cannot be judged (wrong type).
pub fn judge(expect: &Expect, value: &Value) -> Result<bool, String> {
    let text = value.to_string();
    match expect {
        Expect::Equals(wanted) => Ok(match (wanted, value) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Text(a) | Value::Digest(a), Value::Text(b) | Value::Digest(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (wanted, found) => {
                return Err(format!(
                    "expected a {} value, the claim is a {}",
                    kind(wanted),
                    kind(found)
                ));
            }
        }),
        Expect::OneOf(set) => scalar(value).map(|t| set.iter().any(|s| s.eq_ignore_ascii_case(t))),
        Expect::NoneOf(set) => {
            scalar(value).map(|t| !set.iter().any(|s| s.eq_ignore_ascii_case(t)))
        }
        Expect::MinVersion(minimum) => {
            scalar(value).map(|t| compare_versions(t, minimum) != Ordering::Less)
        }
        Expect::Matches(patterns) => scalar(value).map(|t| patterns.iter().any(|p| glob(p, t))),
        Expect::Contains(needed) => match value {
            Value::List(items) => Ok(needed
                .iter()
                .all(|n| items.iter().any(|i| i.eq_ignore_ascii_case(n)))),
            other => Err(format!("expected a list, the claim is a {}", kind(other))),
        },
        Expect::AtMost(limit) => match value {
            Value::Int(i) => Ok(i <= limit),
            other => Err(format!(
                "expected a number, the claim is a {} ({text})",
                kind(other)
            )),
        },
        Expect::ImaAllowed(_) | Expect::ImaRequired(_) => {
            judge_with_reason(expect, value).map(|why| why.is_none())
        }
    }
}

fn scalar(value: &Value) -> Result<&str, String> {
    match value {
        Value::Text(t) | Value::Digest(t) => Ok(t),
        other => Err(format!("expected text, the claim is a {}", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Int(_) => "number",
        Value::Text(_) => "text",
        Value::Digest(_) => "digest",
        Value::List(_) => "list",
        Value::Measurement(_) => "measurement",
    }
}

/// Compares dotted versions segment by segment: decimal where both segments are decimal
/// (`550.54.15` < `550.127.5`), else hexadecimal where both are hex (VBIOS `96.00.9F.00.01`
/// > `96.00.74.00.1C`), else as text. A missing segment counts as zero.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let a: Vec<&str> = a.trim().split(['.', '-']).collect();
    let b: Vec<&str> = b.trim().split(['.', '-']).collect();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or("0");
        let y = b.get(i).copied().unwrap_or("0");
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(p), Ok(q)) => p.cmp(&q),
            _ => match (u64::from_str_radix(x, 16), u64::from_str_radix(y, 16)) {
                (Ok(p), Ok(q)) => p.cmp(&q),
                _ => x.cmp(y),
            },
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Glob match: `*` any run of characters, `?` exactly one; everything else literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    ti = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_and_as_hex() {
        assert_eq!(compare_versions("550.54.15", "550.127.5"), Ordering::Less);
        assert_eq!(compare_versions("535.104.05", "535.104.5"), Ordering::Equal);
        assert_eq!(
            compare_versions("96.00.9F.00.01", "96.00.74.00.1C"),
            Ordering::Greater
        );
        assert_eq!(
            compare_versions("96.00.74.00.1C", "96.00.74.00.1D"),
            Ordering::Less
        );
        assert_eq!(compare_versions("2.0", "2"), Ordering::Equal);
    }

    #[test]
    fn globs() {
        assert!(glob(
            "*ro quiet*",
            "BOOT_IMAGE=/vmlinuz root=/dev/sda ro quiet splash"
        ));
        assert!(!glob("*init=/bin/sh*", "root=/dev/sda ro"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
    }

    #[test]
    fn each_expectation_passes_and_fails() {
        let text = |s: &str| Value::Text(s.into());
        let cases: Vec<(Expect, Value, Result<bool, ()>)> = vec![
            (
                Expect::Equals(Value::Bool(true)),
                Value::Bool(true),
                Ok(true),
            ),
            (
                Expect::Equals(Value::Bool(true)),
                Value::Bool(false),
                Ok(false),
            ),
            (Expect::Equals(Value::Bool(true)), text("true"), Err(())),
            (Expect::Equals(Value::Int(8)), Value::Int(7), Ok(false)),
            (
                Expect::OneOf(vec!["AB".into()]),
                Value::Digest("ab".into()),
                Ok(true),
            ),
            (
                Expect::OneOf(vec!["ab".into()]),
                Value::Digest("cd".into()),
                Ok(false),
            ),
            (
                Expect::OneOf(vec!["ab".into()]),
                Value::List(vec![]),
                Err(()),
            ),
            (Expect::NoneOf(vec!["1.0".into()]), text("1.0"), Ok(false)),
            (Expect::NoneOf(vec!["1.0".into()]), text("1.1"), Ok(true)),
            (
                Expect::MinVersion("550.54.15".into()),
                text("550.54.14"),
                Ok(false),
            ),
            (
                Expect::MinVersion("550.54.15".into()),
                text("550.90.07"),
                Ok(true),
            ),
            (
                Expect::Matches(vec!["* ro *".into()]),
                text("root=x ro quiet"),
                Ok(true),
            ),
            (
                Expect::Matches(vec!["* ro *".into()]),
                text("root=x rw quiet"),
                Ok(false),
            ),
            (
                Expect::Contains(vec!["aa".into()]),
                Value::List(vec!["AA".into(), "bb".into()]),
                Ok(true),
            ),
            (
                Expect::Contains(vec!["cc".into()]),
                Value::List(vec!["aa".into()]),
                Ok(false),
            ),
            (Expect::Contains(vec!["cc".into()]), text("cc"), Err(())),
            (Expect::AtMost(60), Value::Int(61), Ok(false)),
            (Expect::AtMost(60), Value::Int(60), Ok(true)),
            (Expect::AtMost(60), text("1"), Err(())),
        ];
        for (expect, value, wanted) in cases {
            let got = judge(&expect, &value).map_err(|_| ());
            assert_eq!(got, wanted, "{expect} on {value:?}");
        }
    }
}
