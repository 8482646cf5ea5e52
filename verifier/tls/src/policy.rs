//! Which roles may call which gRPC method: one explicit table, deny by default.
//!
//! Methods are listed one by one (no per-service wildcards), so an RPC added to a `.proto`
//! file stays unreachable until someone decides who may call it and adds it here. The test
//! `every_proto_rpc_has_a_policy_entry` fails when that has been forgotten.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::role::Role;

const ATTESTER_OR_ADMIN: &[Role] = &[Role::Attester, Role::Admin];
const ORCHESTRATOR_OR_ADMIN: &[Role] = &[Role::Orchestrator, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const READERS: &[Role] = &[Role::Orchestrator, Role::Admin, Role::Auditor];
const VERIFIER_OR_ADMIN: &[Role] = &[Role::Verifier, Role::Admin];
/// "Any authenticated client": any certificate that carries at least one known role.
const ANY_ROLE: &[Role] = &Role::ALL;

/// One row of the policy: a full gRPC method path and the roles that may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PolicyEntry {
    /// `/<package>.<Service>/<Method>`, exactly as it appears in the HTTP/2 `:path`.
    pub method_path: &'static str,
    /// Holding any one of these roles is enough.
    pub roles: &'static [Role],
}

const fn entry(method_path: &'static str, roles: &'static [Role]) -> PolicyEntry {
    PolicyEntry { method_path, roles }
}

/// The whole policy, for the verifier's and the attester's servers alike (each server only
/// routes its own services, so the other side's rows are never reached there).
pub const POLICY: &[PolicyEntry] = &[
    // vigil.v1.Verifier: attesters push their own evidence; orchestrators pull. Node status,
    // its changes and the verdict history are read-only: for everyone who relies on results.
    entry("/vigil.v1.Verifier/Challenge", ATTESTER_OR_ADMIN),
    entry("/vigil.v1.Verifier/Attest", ATTESTER_OR_ADMIN),
    entry("/vigil.v1.Verifier/AttestNode", ORCHESTRATOR_OR_ADMIN),
    entry("/vigil.v1.Verifier/Watch", READERS),
    entry("/vigil.v1.Verifier/ListNodes", READERS),
    entry("/vigil.v1.Verifier/History", READERS),
    // Public keys that verify attestation results: for everyone who relies on results.
    entry("/vigil.v1.Verifier/GetResultKeys", READERS),
    // vigil.v1.Registrar: enrolment changes who is trusted, so operators only.
    entry("/vigil.v1.Registrar/RegisterNode", ADMIN),
    entry("/vigil.v1.Registrar/Deregister", ADMIN),
    // vigil.v1.Baselines: reading is for everyone who appraises; writing changes verdicts.
    entry("/vigil.v1.Baselines/Get", READERS),
    entry("/vigil.v1.Baselines/List", READERS),
    entry("/vigil.v1.Baselines/Impact", READERS),
    entry("/vigil.v1.Baselines/Put", ADMIN),
    entry("/vigil.v1.Baselines/Assign", ADMIN),
    // vigil.v1.Audit: every RPC is read-only.
    entry("/vigil.v1.Audit/Query", READERS),
    entry("/vigil.v1.Audit/Checkpoint", READERS),
    entry("/vigil.v1.Audit/Prove", READERS),
    entry("/vigil.v1.Audit/PublicKeys", READERS),
    // vigil.v1.Attester (served by vigil-attester): the verifier pulls evidence.
    entry("/vigil.v1.Attester/GetEvidence", VERIFIER_OR_ADMIN),
    entry("/vigil.v1.Attester/GetIdentity", VERIFIER_OR_ADMIN),
    entry("/vigil.v1.Attester/ActivateCredential", VERIFIER_OR_ADMIN),
    // Standard services, so grpcurl and load balancers work for any authenticated client.
    entry("/grpc.health.v1.Health/Check", ANY_ROLE),
    entry("/grpc.health.v1.Health/Watch", ANY_ROLE),
    entry(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ANY_ROLE,
    ),
    // tonic-reflection also serves the older v1alpha name, which some grpcurl versions try first.
    entry(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ANY_ROLE,
    ),
];

/// The policy row for an exact method path, if there is one.
pub fn policy_for(method_path: &str) -> Option<&'static PolicyEntry> {
    POLICY.iter().find(|entry| entry.method_path == method_path)
}

/// Whether a caller holding `roles` may call `method_path`. Paths not in [`POLICY`] (including
/// near misses such as a trailing slash or other case) are denied, and so is an empty role set.
pub fn allowed(method_path: &str, roles: &BTreeSet<Role>) -> bool {
    policy_for(method_path).is_some_and(|entry| entry.roles.iter().any(|role| roles.contains(role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[Role]) -> BTreeSet<Role> {
        list.iter().copied().collect()
    }

    #[test]
    fn verifier_service_rows() {
        let attester = roles(&[Role::Attester]);
        let orchestrator = roles(&[Role::Orchestrator]);
        assert!(allowed("/vigil.v1.Verifier/Challenge", &attester));
        assert!(allowed("/vigil.v1.Verifier/Attest", &attester));
        assert!(!allowed("/vigil.v1.Verifier/AttestNode", &attester));
        assert!(!allowed("/vigil.v1.Verifier/Watch", &attester));
        assert!(allowed("/vigil.v1.Verifier/AttestNode", &orchestrator));
        assert!(allowed("/vigil.v1.Verifier/Watch", &orchestrator));
        assert!(!allowed("/vigil.v1.Verifier/Attest", &orchestrator));
        assert!(!allowed(
            "/vigil.v1.Verifier/Challenge",
            &roles(&[Role::Auditor])
        ));
    }

    #[test]
    fn writes_need_admin() {
        for path in [
            "/vigil.v1.Registrar/RegisterNode",
            "/vigil.v1.Registrar/Deregister",
            "/vigil.v1.Baselines/Put",
            "/vigil.v1.Baselines/Assign",
        ] {
            assert!(allowed(path, &roles(&[Role::Admin])), "{path}");
            for role in [
                Role::Attester,
                Role::Orchestrator,
                Role::Auditor,
                Role::Verifier,
            ] {
                assert!(!allowed(path, &roles(&[role])), "{path} {role}");
            }
        }
    }

    #[test]
    fn readers_read_baselines_audit_nodes_and_history() {
        for path in [
            "/vigil.v1.Baselines/Get",
            "/vigil.v1.Baselines/List",
            "/vigil.v1.Baselines/Impact",
            "/vigil.v1.Audit/Query",
            "/vigil.v1.Audit/Checkpoint",
            "/vigil.v1.Audit/Prove",
            "/vigil.v1.Audit/PublicKeys",
            "/vigil.v1.Verifier/GetResultKeys",
            "/vigil.v1.Verifier/Watch",
            "/vigil.v1.Verifier/ListNodes",
            "/vigil.v1.Verifier/History",
        ] {
            for role in [Role::Orchestrator, Role::Admin, Role::Auditor] {
                assert!(allowed(path, &roles(&[role])), "{path} {role}");
            }
            for role in [Role::Attester, Role::Verifier] {
                assert!(!allowed(path, &roles(&[role])), "{path} {role}");
            }
        }
    }

    #[test]
    fn attester_service_is_for_the_verifier() {
        for method in ["GetEvidence", "GetIdentity", "ActivateCredential"] {
            let path = format!("/vigil.v1.Attester/{method}");
            assert!(allowed(&path, &roles(&[Role::Verifier])));
            assert!(allowed(&path, &roles(&[Role::Admin])));
            assert!(!allowed(&path, &roles(&[Role::Attester])));
            assert!(!allowed(&path, &roles(&[Role::Orchestrator])));
        }
        // The verifier role opens nothing on the verifier's own services.
        assert!(!allowed(
            "/vigil.v1.Verifier/Attest",
            &roles(&[Role::Verifier])
        ));
    }

    #[test]
    fn health_and_reflection_for_any_role_but_not_for_none() {
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            for role in Role::ALL {
                assert!(allowed(path, &roles(&[role])), "{path} {role}");
            }
            assert!(!allowed(path, &BTreeSet::new()), "{path}");
        }
    }

    #[test]
    fn unknown_and_near_miss_paths_are_denied() {
        let everything = roles(&Role::ALL);
        for path in [
            "",
            "/",
            "/vigil.v1.Verifier/Unknown",
            "/vigil.v1.Verifier/Attest/",
            "/vigil.v1.verifier/Attest",
            "//vigil.v1.Verifier/Attest",
            "vigil.v1.Verifier/Attest",
            "/vigil.v2.Verifier/Attest",
            "/vigil.v1.Registrar/ActivateCredential",
        ] {
            assert!(!allowed(path, &everything), "{path:?}");
        }
    }

    #[test]
    fn table_paths_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for entry in POLICY {
            assert!(
                seen.insert(entry.method_path),
                "duplicate {}",
                entry.method_path
            );
            let rest = entry.method_path.strip_prefix('/').unwrap();
            let (service, method) = rest.split_once('/').unwrap();
            assert!(service.contains('.') && !method.is_empty() && !method.contains('/'));
            assert!(!entry.roles.is_empty());
        }
    }

    /// Reads the workspace's `.proto` files: an RPC without a row would be silently denied.
    #[test]
    fn every_proto_rpc_has_a_policy_entry() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/proto/vigil/v1");
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut checked = 0;
        for file in entries {
            let path = file.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("proto") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let package = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("package "))
                .map(|p| p.trim_end_matches(';').trim().to_string());
            let mut service = None;
            for line in text.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("service ") {
                    service = rest.split_whitespace().next().map(str::to_string);
                } else if let Some(rest) = line.strip_prefix("rpc ") {
                    let method = rest.split('(').next().unwrap().trim();
                    let full = format!(
                        "/{}.{}/{method}",
                        package.as_deref().unwrap(),
                        service.as_deref().unwrap()
                    );
                    assert!(policy_for(&full).is_some(), "no policy row for {full}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10, "only {checked} RPCs found in {dir}");
    }
}
