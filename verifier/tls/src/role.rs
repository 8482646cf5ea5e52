//! The five roles a Vigil client certificate can carry, and their URI spelling.

use serde::Serialize;

/// Prefix of the subjectAltName URI that names a role: `urn:vigil:role:<role>`.
pub const ROLE_URI_PREFIX: &str = "urn:vigil:role:";
/// Prefix of the subjectAltName URI that names an attester's node: `urn:vigil:node:<id>`.
pub const NODE_URI_PREFIX: &str = "urn:vigil:node:";

/// What a certificate holder is allowed to do; see the policy table in [`crate::policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A GPU host's attester pushing its own evidence (`Verifier/Challenge`, `Verifier/Attest`).
    Attester,
    /// A scheduler or orchestrator pulling verdicts and reading baselines and the audit log.
    Orchestrator,
    /// An operator: everything.
    Admin,
    /// Read-only access to the audit log and baselines.
    Auditor,
    /// The verifier itself, calling an attester's `vigil.v1.Attester` service.
    Verifier,
}

impl Role {
    /// Every role, in a fixed order (used for dev certificates and dev mode).
    pub const ALL: [Role; 5] = [
        Role::Attester,
        Role::Orchestrator,
        Role::Admin,
        Role::Auditor,
        Role::Verifier,
    ];

    /// The lowercase name used in the role URI and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attester => "attester",
            Role::Orchestrator => "orchestrator",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Verifier => "verifier",
        }
    }

    /// Parses an exact lowercase role name; anything else (other case, unknown names) is `None`,
    /// so an unexpected spelling can never grant access.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// The subjectAltName URI that grants this role.
    pub fn uri(self) -> String {
        format!("{ROLE_URI_PREFIX}{}", self.as_str())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
            assert_eq!(role.uri(), format!("urn:vigil:role:{role}"));
        }
    }

    #[test]
    fn unknown_or_miscased_names_are_not_roles() {
        assert_eq!(Role::from_name("Admin"), None);
        assert_eq!(Role::from_name("root"), None);
        assert_eq!(Role::from_name(""), None);
        assert_eq!(Role::from_name("admin "), None);
    }
}
