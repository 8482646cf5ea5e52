//! Typed, named claims about one device, in the spirit of NVIDIA's `x-nvidia-gpu-*` claims:
//! each says whether a check held (`verified`), did not (`failed`, with the reason), or could
//! not be decided from the evidence given (`unknown`, with the reason), and carries the value
//! it is about.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ClaimStatus {
    Verified,
    Failed { reason: String },
    Unknown { reason: String },
}

impl ClaimStatus {
    pub fn failed(reason: impl Into<String>) -> Self {
        ClaimStatus::Failed {
            reason: reason.into(),
        }
    }

    pub fn unknown(reason: impl Into<String>) -> Self {
        ClaimStatus::Unknown {
            reason: reason.into(),
        }
    }

    pub fn is_verified(&self) -> bool {
        matches!(self, ClaimStatus::Verified)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, ClaimStatus::Failed { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ClaimValue {
    None,
    Bool(bool),
    Integer(i64),
    Text(String),
    List(Vec<String>),
}

impl From<bool> for ClaimValue {
    fn from(v: bool) -> Self {
        ClaimValue::Bool(v)
    }
}

impl From<String> for ClaimValue {
    fn from(v: String) -> Self {
        ClaimValue::Text(v)
    }
}

impl From<&str> for ClaimValue {
    fn from(v: &str) -> Self {
        ClaimValue::Text(v.to_string())
    }
}

impl From<Vec<String>> for ClaimValue {
    fn from(v: Vec<String>) -> Self {
        ClaimValue::List(v)
    }
}

impl std::fmt::Display for ClaimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimValue::None => f.write_str("-"),
            ClaimValue::Bool(b) => write!(f, "{b}"),
            ClaimValue::Integer(i) => write!(f, "{i}"),
            ClaimValue::Text(s) => f.write_str(s),
            ClaimValue::List(items) => write!(f, "[{}]", items.join("; ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// e.g. `gpu.signature_verified`, `switch.vbios_version`.
    pub name: String,
    #[serde(flatten)]
    pub status: ClaimStatus,
    pub value: ClaimValue,
}

/// Claims of one device, in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Claims(pub Vec<Claim>);

impl Claims {
    pub(crate) fn push(&mut self, name: String, status: ClaimStatus, value: impl Into<ClaimValue>) {
        self.0.push(Claim {
            name,
            status,
            value: value.into(),
        });
    }

    /// The claim with this full name (`gpu.nonce_match`).
    pub fn get(&self, name: &str) -> Option<&Claim> {
        self.0.iter().find(|c| c.name == name)
    }

    /// The claim whose name ends with this suffix after the device prefix
    /// (`nonce_match` finds `gpu.nonce_match` or `switch.nonce_match`).
    pub fn find(&self, suffix: &str) -> Option<&Claim> {
        self.0.iter().find(|c| {
            c.name
                .split_once('.')
                .is_some_and(|(_, rest)| rest == suffix)
        })
    }

    pub fn failed(&self) -> impl Iterator<Item = &Claim> {
        self.0.iter().filter(|c| c.status.is_failed())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Claim> {
        self.0.iter()
    }
}
