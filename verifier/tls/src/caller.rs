//! From a client certificate (already verified by the TLS handshake) to a typed [`Caller`].
//!
//! This module reads names only: whether the certificate chains to the configured CA and is
//! within its validity period was decided by rustls during the handshake.

use std::collections::BTreeSet;

use serde::Serialize;
use x509_parser::extensions::GeneralName;

use crate::error::TlsError;
use crate::role::{NODE_URI_PREFIX, ROLE_URI_PREFIX, Role};

/// Largest client certificate (DER) we parse; real ones are 0.5–2 KiB.
pub const MAX_CERTIFICATE_DER: usize = 64 * 1024;
/// Most subjectAltName entries we read from one certificate.
pub const MAX_SUBJECT_ALT_NAMES: usize = 64;
/// Longest node id accepted in `urn:vigil:node:<id>`.
pub const MAX_NODE_ID_LEN: usize = 128;

/// Who is calling, as established by the client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// Known roles from `urn:vigil:role:<role>` URIs. Empty means no access at all.
    pub roles: BTreeSet<Role>,
    /// The node named by `urn:vigil:node:<id>`, if any (meant for attester certificates).
    pub node_id: Option<String>,
    /// The certificate's subject DN, for logs and the audit record.
    pub subject: String,
    /// Role URIs whose role name is not one we know; kept for logging, they grant nothing.
    pub unknown_roles: Vec<String>,
}

impl Caller {
    /// The caller put in place by [`crate::RoleLayer::dev`]: no TLS, every role, no node.
    pub fn dev() -> Caller {
        Caller {
            roles: Role::ALL.into_iter().collect(),
            node_id: None,
            subject: "dev-mode (no client certificate)".to_string(),
            unknown_roles: Vec::new(),
        }
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this caller may challenge/attest on behalf of `node_id`.
    ///
    /// Admins may act for any node. A certificate bound to a node (`urn:vigil:node:<id>`) may
    /// act only for that node. A certificate without a node binding is a fleet-wide attester
    /// certificate: the node's identity then rests on its TPM evidence alone, so it may act
    /// for any node. Issue bound certificates where hosts should not vouch for each other.
    pub fn may_act_for_node(&self, node_id: &str) -> bool {
        if self.has_role(Role::Admin) {
            return true;
        }
        match &self.node_id {
            Some(bound) => bound == node_id,
            None => true,
        }
    }
}

/// Reads roles, node id and subject from a DER client certificate.
///
/// Unknown role names are ignored (listed in [`Caller::unknown_roles`]); a malformed or
/// repeated node id is an error, because guessing which node is meant could let one host
/// speak for another.
pub fn caller_from_certificate(der: &[u8]) -> Result<Caller, TlsError> {
    if der.len() > MAX_CERTIFICATE_DER {
        return Err(TlsError::TooLarge {
            what: "client certificate (DER)".to_string(),
            size: der.len() as u64,
            limit: MAX_CERTIFICATE_DER as u64,
        });
    }
    let (rest, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::CertificateParse {
            what: "client certificate".to_string(),
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(TlsError::CertificateParse {
            what: "client certificate".to_string(),
            reason: format!(
                "{} trailing bytes after the certificate at offset {}",
                rest.len(),
                der.len() - rest.len()
            ),
        });
    }

    let mut caller = Caller {
        roles: BTreeSet::new(),
        node_id: None,
        subject: cert.subject().to_string(),
        unknown_roles: Vec::new(),
    };
    let san = cert
        .subject_alternative_name()
        .map_err(|e| TlsError::SubjectAltName {
            reason: e.to_string(),
        })?;
    let Some(san) = san else {
        return Ok(caller);
    };
    let names = &san.value.general_names;
    if names.len() > MAX_SUBJECT_ALT_NAMES {
        return Err(TlsError::TooManyNames {
            count: names.len(),
            limit: MAX_SUBJECT_ALT_NAMES,
        });
    }
    for (index, name) in names.iter().enumerate() {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        if let Some(role_name) = uri.strip_prefix(ROLE_URI_PREFIX) {
            match Role::from_name(role_name) {
                Some(role) => {
                    caller.roles.insert(role);
                }
                None => caller.unknown_roles.push((*uri).to_string()),
            }
        } else if let Some(node_id) = uri.strip_prefix(NODE_URI_PREFIX) {
            check_node_id(node_id, index)?;
            if caller.node_id.is_some() {
                return Err(TlsError::NodeId {
                    reason: format!(
                        "second {NODE_URI_PREFIX} URI at subjectAltName entry {index}; \
                         a certificate names at most one node"
                    ),
                });
            }
            caller.node_id = Some(node_id.to_string());
        }
    }
    Ok(caller)
}

/// Node ids are plain identifiers: 1..=128 characters of `[A-Za-z0-9._-]`.
fn check_node_id(node_id: &str, index: usize) -> Result<(), TlsError> {
    if node_id.is_empty() || node_id.len() > MAX_NODE_ID_LEN {
        return Err(TlsError::NodeId {
            reason: format!(
                "subjectAltName entry {index}: node id is {} characters, must be 1..={MAX_NODE_ID_LEN}",
                node_id.len()
            ),
        });
    }
    if let Some(bad) = node_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TlsError::NodeId {
            reason: format!(
                "subjectAltName entry {index}: character {bad:?} not allowed in node id"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev_certs::testing::TestCa;

    fn parse(ca: &TestCa, uris: &[&str]) -> Result<Caller, TlsError> {
        caller_from_certificate(&ca.client_der(uris))
    }

    #[test]
    fn roles_and_node_id_are_read() {
        let ca = TestCa::new();
        let caller = parse(
            &ca,
            &["urn:vigil:role:attester", "urn:vigil:node:gpu-host-7"],
        )
        .unwrap();
        assert_eq!(caller.roles, BTreeSet::from([Role::Attester]));
        assert_eq!(caller.node_id.as_deref(), Some("gpu-host-7"));
        assert!(caller.subject.contains("CN="), "{}", caller.subject);
        assert!(caller.unknown_roles.is_empty());

        let caller = parse(
            &ca,
            &["urn:vigil:role:auditor", "urn:vigil:role:orchestrator"],
        )
        .unwrap();
        assert_eq!(
            caller.roles,
            BTreeSet::from([Role::Auditor, Role::Orchestrator])
        );
        assert_eq!(caller.node_id, None);
    }

    #[test]
    fn no_san_or_no_role_means_no_roles() {
        let ca = TestCa::new();
        assert!(parse(&ca, &[]).unwrap().roles.is_empty());
        assert!(
            parse(&ca, &["https://example.com/"])
                .unwrap()
                .roles
                .is_empty()
        );
        // A node binding alone grants nothing either.
        let bound_only = parse(&ca, &["urn:vigil:node:n1"]).unwrap();
        assert!(bound_only.roles.is_empty());
    }

    #[test]
    fn unknown_role_names_are_ignored_not_granted() {
        let ca = TestCa::new();
        let caller = parse(
            &ca,
            &[
                "urn:vigil:role:root",
                "urn:vigil:role:Admin",
                "urn:vigil:role:",
                "urn:vigil:role:admin:extra",
            ],
        )
        .unwrap();
        assert!(caller.roles.is_empty());
        assert_eq!(caller.unknown_roles.len(), 4);

        let mixed = parse(&ca, &["urn:vigil:role:superuser", "urn:vigil:role:auditor"]).unwrap();
        assert_eq!(mixed.roles, BTreeSet::from([Role::Auditor]));
        assert_eq!(mixed.unknown_roles, vec!["urn:vigil:role:superuser"]);
    }

    #[test]
    fn malformed_node_ids_reject_the_certificate() {
        let ca = TestCa::new();
        let long = format!("urn:vigil:node:{}", "a".repeat(MAX_NODE_ID_LEN + 1));
        let exactly_max = format!("urn:vigil:node:{}", "a".repeat(MAX_NODE_ID_LEN));
        assert!(parse(&ca, &["urn:vigil:role:attester", &exactly_max]).is_ok());
        for bad in [
            "urn:vigil:node:",
            "urn:vigil:node:a/b",
            "urn:vigil:node:a%2Fb",
            &long,
        ] {
            let err = parse(&ca, &["urn:vigil:role:attester", bad]).unwrap_err();
            assert!(matches!(err, TlsError::NodeId { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn two_node_ids_reject_the_certificate() {
        let ca = TestCa::new();
        let err = parse(
            &ca,
            &[
                "urn:vigil:role:attester",
                "urn:vigil:node:a",
                "urn:vigil:node:b",
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }

    #[test]
    fn too_many_names_are_refused() {
        let ca = TestCa::new();
        let uris: Vec<String> = (0..=MAX_SUBJECT_ALT_NAMES)
            .map(|i| format!("urn:example:{i}"))
            .collect();
        let refs: Vec<&str> = uris.iter().map(String::as_str).collect();
        let err = parse(&ca, &refs).unwrap_err();
        assert!(
            matches!(err, TlsError::TooManyNames { count: 65, .. }),
            "{err}"
        );
        assert!(parse(&ca, &refs[1..]).is_ok());
    }

    #[test]
    fn broken_der_is_an_error() {
        let ca = TestCa::new();
        let der = ca.client_der(&["urn:vigil:role:admin"]);
        assert!(caller_from_certificate(&der).is_ok());

        let truncated = &der[..der.len() - 1];
        assert!(matches!(
            caller_from_certificate(truncated),
            Err(TlsError::CertificateParse { .. })
        ));

        let mut trailing = der.clone();
        trailing.push(0);
        let err = caller_from_certificate(&trailing).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");

        assert!(caller_from_certificate(&[]).is_err());
        let huge = vec![0x30; MAX_CERTIFICATE_DER + 1];
        assert!(matches!(
            caller_from_certificate(&huge),
            Err(TlsError::TooLarge { .. })
        ));
    }

    #[test]
    fn node_binding_limits_whom_an_attester_speaks_for() {
        let ca = TestCa::new();
        let bound = parse(&ca, &["urn:vigil:role:attester", "urn:vigil:node:n1"]).unwrap();
        assert!(bound.may_act_for_node("n1"));
        assert!(!bound.may_act_for_node("n2"));
        assert!(!bound.may_act_for_node(""));

        let unbound = parse(&ca, &["urn:vigil:role:attester"]).unwrap();
        assert!(unbound.may_act_for_node("n2"));

        let admin = parse(&ca, &["urn:vigil:role:admin", "urn:vigil:node:n1"]).unwrap();
        assert!(admin.may_act_for_node("n2"));
    }
}
