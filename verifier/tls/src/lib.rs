//! Mutual TLS with roles for Vigil's gRPC servers (`vigil serve`, `vigil-attester serve`).
//!
//! Outside `--dev` mode every connection presents a client certificate from the configured CA
//! (rustls checks the chain and validity period during the handshake, with client
//! authentication required); [`RoleLayer`] then reads the certificate's roles and lets a
//! request through only if the policy lists one of them for the method.
//!
//! # Decisions
//! - **Roles** travel in the client certificate as subjectAltName URIs
//!   `urn:vigil:role:<role>`, one or more, with `<role>` one of `attester`, `orchestrator`,
//!   `admin`, `auditor`, `verifier` (exact lowercase). Unknown role names are ignored: they
//!   grant nothing and are not an error. A certificate with no known role gets no access,
//!   not even health.
//! - **Node binding**: an attester certificate may carry `urn:vigil:node:<id>` (at most one;
//!   `[A-Za-z0-9._-]{1,128}`). A malformed or repeated node URI rejects the certificate.
//!   Services read it with [`caller`] and check [`Caller::may_act_for_node`].
//! - **Policy** ([`policy::POLICY`]): one explicit row per method, deny by default (unknown
//!   paths, near misses, empty role sets):
//!   - `Verifier/Challenge`, `Verifier/Attest`: attester, admin.
//!     `Verifier/AttestNode`: orchestrator, admin.
//!     `Verifier/Watch|ListNodes|History` (read-only) and `Verifier/GetResultKeys` (public
//!     JWKS): orchestrator, admin, auditor.
//!   - `Registrar/RegisterNode`, `Registrar/Deregister`: admin.
//!   - `Baselines/Get|List|Impact`: orchestrator, admin, auditor. `Baselines/Put|Assign`: admin.
//!   - `Audit/Query|Checkpoint|Prove|PublicKeys` (all read-only): auditor, admin, orchestrator.
//!   - `grpc.health.v1.Health/*`, `grpc.reflection.v1{,alpha}.ServerReflection/*`: any role.
//!   - `vigil.v1.Attester/GetEvidence|GetIdentity|ActivateCredential` (attester side):
//!     verifier, admin. The verifier's own client certificate carries the role `verifier`.
//! - **Answers**: no or unreadable certificate → UNAUTHENTICATED; no role or role not
//!   listed → PERMISSION_DENIED; both as gRPC status responses (HTTP 200, `grpc-status`).
//! - **Dev mode**: [`RoleLayer::dev`] admits everything as [`Caller::dev`] (all roles).
//! - **Crypto**: rustls with the ring provider only (tonic `tls-ring`, rcgen `ring`); no
//!   aws-lc, no C crypto.

mod address;
mod caller;
mod config;
mod dev_certs;
mod error;
mod explain;
mod layer;
pub mod policy;
mod role;
pub mod settings;

pub use address::{endpoint_uri, host_of, same_endpoint};
pub use caller::{
    Caller, MAX_CERTIFICATE_DER, MAX_NODE_ID_LEN, MAX_SUBJECT_ALT_NAMES, caller_from_certificate,
};
pub use config::{
    MAX_PEM_BLOCKS, MAX_PEM_FILE, client_tls_config, client_tls_config_from_dir, server_tls_config,
    server_tls_config_from_dir,
};
pub use dev_certs::{
    CA_CERT_FILE, CA_KEY_FILE, DEV_NODE_ID, DevCertValidity, InvalidServerName,
    MAX_EXTRA_SERVER_NAMES, SERVER_CERT_FILE, SERVER_KEY_FILE, ServerName, role_file_names,
    write_dev_certs, write_dev_certs_with, write_dev_certs_with_names,
};
pub use error::TlsError;
pub use explain::{
    TransportTarget, check_scheme, explain_status, explain_transport_error, is_transport_failure,
};
pub use layer::{RoleFuture, RoleLayer, RoleService, authorize, caller};
pub use policy::allowed;
pub use role::{NODE_URI_PREFIX, ROLE_URI_PREFIX, Role};
