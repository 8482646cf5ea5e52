//! Real TLS on loopback: tonic server with `RoleLayer`, tonic clients with dev certificates.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::uri::PathAndQuery;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server, ServerTlsConfig};
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use vigil_tls::{
    CA_CERT_FILE, CA_KEY_FILE, DevCertValidity, Role, RoleLayer, TlsError, caller,
    client_tls_config, client_tls_config_from_dir, server_tls_config, server_tls_config_from_dir,
    write_dev_certs, write_dev_certs_with,
};

const HEALTH: &str = "/grpc.health.v1.Health/Check";
const ECHO_HEADER: &str = "x-test-caller";

/// An empty scratch directory under cargo's per-target temp dir (reused, not left in /tmp).
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("vigil-tls-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The test PKI, written once per test process by `write_dev_certs`.
fn pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fresh_dir("pki");
        write_dev_certs(&dir, false).unwrap();
        dir
    })
}

/// A second, unrelated dev PKI.
fn other_pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fresh_dir("other-pki");
        write_dev_certs(&dir, false).unwrap();
        dir
    })
}

/// Inner layer standing in for a Vigil service: reports the `Caller` the role layer inserted.
#[derive(Clone)]
struct EchoCaller<S>(S);

impl<S, B, R> tower_service::Service<http::Request<B>> for EchoCaller<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let summary = caller(request.extensions()).map(|c| {
            let roles: Vec<&str> = c.roles.iter().map(|r| r.as_str()).collect();
            format!(
                "roles={};node={}",
                roles.join(","),
                c.node_id.as_deref().unwrap_or("-")
            )
        });
        let future = self.0.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let value = summary.unwrap_or_else(|| "none".to_string());
            response
                .headers_mut()
                .insert(ECHO_HEADER, http::HeaderValue::from_str(&value).unwrap());
            Ok(response)
        })
    }
}

/// Starts a server (health service only; every other path is UNIMPLEMENTED) and returns its port.
async fn start_server(tls: Option<ServerTlsConfig>, layer: RoleLayer) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let router = builder
        .layer(layer)
        .layer(tower_layer::layer_fn(EchoCaller))
        .add_service(health);
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
    port
}

async fn start_tls_server() -> u16 {
    start_server(
        Some(server_tls_config_from_dir(pki()).unwrap()),
        RoleLayer::new(),
    )
    .await
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The RPC succeeded; the echo of the caller the service saw.
    Served(String),
    /// The server answered a gRPC status (from the layer or the router); the caller echo if any.
    Status(Code, Option<String>),
    /// No gRPC answer at all: the connection or TLS handshake failed.
    Refused(String),
}

async fn call(
    port: u16,
    scheme: &str,
    tls: Option<ClientTlsConfig>,
    path: &'static str,
) -> Outcome {
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://localhost:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(e) => return Outcome::Refused(format!("connect: {e:?}")),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return Outcome::Refused(format!("ready: {e:?}"));
    }
    let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
    let request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let echo = |m: &tonic::metadata::MetadataMap| {
        m.get(ECHO_HEADER).map(|v| v.to_str().unwrap().to_string())
    };
    match grpc
        .unary(request, PathAndQuery::from_static(path), codec)
        .await
    {
        Ok(response) => Outcome::Served(echo(response.metadata()).unwrap_or_default()),
        // Transport failures surface as a Status that carries the underlying error as source.
        Err(status) if std::error::Error::source(&status).is_some() => {
            Outcome::Refused(format!("{status:?}"))
        }
        Err(status) => Outcome::Status(status.code(), echo(status.metadata())),
    }
}

async fn call_as(port: u16, role: Role, path: &'static str) -> Outcome {
    let tls = client_tls_config_from_dir(pki(), role, "localhost").unwrap();
    call(port, "https", Some(tls), path).await
}

/// The TLS layer refused, for the reason named by `why` (a rustls error or alert name).
fn assert_refused(outcome: &Outcome, why: &str) {
    assert!(
        matches!(outcome, Outcome::Refused(error) if error.contains(why)),
        "expected a connection refused with {why}, got {outcome:?}"
    );
}

fn assert_denied(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::Status(Code::PermissionDenied, None)),
        "expected PERMISSION_DENIED before the service, got {outcome:?}"
    );
}

/// UNIMPLEMENTED from the router, with the caller echoed: the role layer let the call through.
fn assert_passed_layer(outcome: &Outcome) {
    assert!(
        matches!(outcome, Outcome::Status(Code::Unimplemented, Some(_))),
        "expected the call to pass the role layer, got {outcome:?}"
    );
}

#[tokio::test]
async fn every_role_can_check_health() {
    let port = start_tls_server().await;
    for role in Role::ALL {
        match call_as(port, role, HEALTH).await {
            Outcome::Served(echo) => assert!(echo.contains(role.as_str()), "{echo}"),
            other => panic!("{role}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_without_certificate_fails_the_handshake() {
    let port = start_tls_server().await;
    let ca = Certificate::from_pem(std::fs::read(pki().join(CA_CERT_FILE)).unwrap());
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");
    assert_refused(
        &call(port, "https", Some(tls), HEALTH).await,
        "CertificateRequired",
    );
}

/// If TLS were configured to let certificate-less clients in, the layer still refuses them.
#[tokio::test]
async fn layer_refuses_a_client_without_certificate_as_unauthenticated() {
    let tls = server_tls_config_from_dir(pki())
        .unwrap()
        .client_auth_optional(true);
    let port = start_server(Some(tls), RoleLayer::new()).await;
    let ca = Certificate::from_pem(std::fs::read(pki().join(CA_CERT_FILE)).unwrap());
    let client = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");
    assert_eq!(
        call(port, "https", Some(client), HEALTH).await,
        Outcome::Status(Code::Unauthenticated, None)
    );
    // Same server, with a certificate: admitted.
    assert!(matches!(
        call_as(port, Role::Admin, HEALTH).await,
        Outcome::Served(_)
    ));
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let port = start_tls_server().await;
    let other = other_pki();
    let tls = client_tls_config(
        &pki().join(CA_CERT_FILE),
        &other.join("admin.pem"),
        &other.join("admin-key.pem"),
        "localhost",
    )
    .unwrap();
    assert_refused(&call(port, "https", Some(tls), HEALTH).await, "UnknownCA");
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_refused_by_the_client() {
    let port = start_tls_server().await;
    let tls = client_tls_config_from_dir(other_pki(), Role::Admin, "localhost").unwrap();
    assert_refused(
        &call(port, "https", Some(tls), HEALTH).await,
        "UnknownIssuer",
    );
}

#[tokio::test]
async fn server_name_must_match() {
    let port = start_tls_server().await;
    let tls = client_tls_config_from_dir(pki(), Role::Admin, "verifier.example").unwrap();
    assert_refused(
        &call(port, "https", Some(tls), HEALTH).await,
        "NotValidForName",
    );
}

#[tokio::test]
async fn attester_cannot_put_baselines_but_admin_passes() {
    let port = start_tls_server().await;
    assert_denied(&call_as(port, Role::Attester, "/vigil.v1.Baselines/Put").await);
    assert_passed_layer(&call_as(port, Role::Admin, "/vigil.v1.Baselines/Put").await);
    assert_passed_layer(&call_as(port, Role::Attester, "/vigil.v1.Verifier/Attest").await);
}

#[tokio::test]
async fn auditor_reads_audit_but_cannot_put_baselines() {
    let port = start_tls_server().await;
    assert_passed_layer(&call_as(port, Role::Auditor, "/vigil.v1.Audit/Query").await);
    assert_denied(&call_as(port, Role::Auditor, "/vigil.v1.Baselines/Put").await);
    assert_denied(&call_as(port, Role::Auditor, "/vigil.v1.Verifier/Attest").await);
}

#[tokio::test]
async fn unknown_methods_are_denied_even_to_admin() {
    let port = start_tls_server().await;
    assert_denied(&call_as(port, Role::Admin, "/vigil.v1.Verifier/Shutdown").await);
    assert_denied(&call_as(port, Role::Admin, "/grpc.health.v1.Health/Check/").await);
    assert_denied(&call_as(port, Role::Admin, "/other.Service/Method").await);
}

#[tokio::test]
async fn attester_service_is_for_the_verifier_role() {
    let port = start_tls_server().await;
    let path = "/vigil.v1.Attester/GetEvidence";
    assert_passed_layer(&call_as(port, Role::Verifier, path).await);
    assert_denied(&call_as(port, Role::Attester, path).await);
    assert_denied(&call_as(port, Role::Orchestrator, path).await);
    assert_denied(&call_as(port, Role::Verifier, "/vigil.v1.Verifier/Challenge").await);
}

#[tokio::test]
async fn attester_node_id_reaches_the_service() {
    let port = start_tls_server().await;
    assert_eq!(
        call_as(port, Role::Attester, "/vigil.v1.Verifier/Challenge").await,
        Outcome::Status(
            Code::Unimplemented,
            Some("roles=attester;node=dev-node".into())
        )
    );
    assert_eq!(
        call_as(port, Role::Orchestrator, HEALTH).await,
        Outcome::Served("roles=orchestrator;node=-".into())
    );
}

/// Issues a client certificate from the written dev CA (its key is `ca-key.pem`).
fn issue_from_dev_ca(name: &str, uris: &[&str], validity: DevCertValidity) -> ClientTlsConfig {
    let dir = pki();
    let ca_pem = std::fs::read_to_string(dir.join(CA_CERT_FILE)).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(dir.join(CA_KEY_FILE)).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = uris
        .iter()
        .map(|u| rcgen::SanType::URI((*u).try_into().unwrap()))
        .collect();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let out = fresh_dir(name);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("c.pem"), cert.pem()).unwrap();
    std::fs::write(out.join("k.pem"), key.serialize_pem()).unwrap();
    client_tls_config(
        &dir.join(CA_CERT_FILE),
        &out.join("c.pem"),
        &out.join("k.pem"),
        "localhost",
    )
    .unwrap()
}

#[tokio::test]
async fn certificate_without_role_gets_nothing() {
    let port = start_tls_server().await;
    let now = SystemTime::now();
    let valid = DevCertValidity::one_year_from(now);
    let no_role = issue_from_dev_ca("no-role", &["urn:vigil:role:superuser"], valid);
    assert_denied(&call(port, "https", Some(no_role), HEALTH).await);
    // The same issuing path with a real role works, so the denial above is about the role.
    let auditor = issue_from_dev_ca("auditor-again", &["urn:vigil:role:auditor"], valid);
    assert!(matches!(
        call(port, "https", Some(auditor), HEALTH).await,
        Outcome::Served(_)
    ));
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let port = start_tls_server().await;
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    let expired = DevCertValidity {
        not_before: now - 10 * day,
        not_after: now - day,
    };
    let future = DevCertValidity {
        not_before: now + day,
        not_after: now + 10 * day,
    };
    for (name, validity) in [("expired", expired), ("future", future)] {
        let tls = issue_from_dev_ca(name, &["urn:vigil:role:admin"], validity);
        // rustls answers both with the certificate_expired alert.
        assert_refused(
            &call(port, "https", Some(tls), HEALTH).await,
            "CertificateExpired",
        );
    }
}

#[tokio::test]
async fn dev_mode_admits_plaintext_callers_with_every_role() {
    let port = start_server(None, RoleLayer::dev()).await;
    assert_passed_layer(&call(port, "http", None, "/vigil.v1.Baselines/Put").await);
    match call(port, "http", None, HEALTH).await {
        Outcome::Served(echo) => {
            assert_eq!(
                echo,
                "roles=attester,orchestrator,admin,auditor,verifier;node=-"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn enforcing_layer_refuses_plaintext_callers() {
    let port = start_server(None, RoleLayer::new()).await;
    assert_eq!(
        call(port, "http", None, HEALTH).await,
        Outcome::Status(Code::Unauthenticated, None)
    );
}

#[test]
fn dev_certs_are_written_with_private_keys_0600_and_never_overwritten() {
    let dir = fresh_dir("write");
    let written = write_dev_certs(&dir, false).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let expected = [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        "attester.pem",
        "attester-key.pem",
        "orchestrator.pem",
        "orchestrator-key.pem",
        "admin.pem",
        "admin-key.pem",
        "auditor.pem",
        "auditor-key.pem",
        "verifier.pem",
        "verifier-key.pem",
    ];
    assert_eq!(names, expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in &written {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            let is_key = path.to_string_lossy().ends_with("-key.pem");
            if is_key {
                assert_eq!(mode, 0o600, "{}", path.display());
            } else {
                assert_eq!(mode & 0o077 & !0o044, 0, "{} mode {mode:o}", path.display());
            }
        }
    }

    let before = std::fs::read(dir.join("admin.pem")).unwrap();
    let err = write_dev_certs(&dir, false).unwrap_err();
    assert!(matches!(err, TlsError::AlreadyExists { .. }), "{err}");
    assert_eq!(std::fs::read(dir.join("admin.pem")).unwrap(), before);

    // One existing file is enough to refuse, and nothing else is written.
    let partial = fresh_dir("write-partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("verifier-key.pem"), b"keep me").unwrap();
    assert!(write_dev_certs(&partial, false).is_err());
    assert!(!partial.join("ca.pem").exists());
    assert_eq!(
        std::fs::read(partial.join("verifier-key.pem")).unwrap(),
        b"keep me"
    );

    let rewritten = write_dev_certs(&dir, true).unwrap();
    assert_eq!(rewritten.len(), expected.len());
    assert_ne!(std::fs::read(dir.join("admin.pem")).unwrap(), before);
}

#[test]
fn dev_certs_follow_the_given_validity() {
    let dir = fresh_dir("validity");
    let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let not_after = not_before + Duration::from_secs(86_400);
    write_dev_certs_with(
        &dir,
        false,
        DevCertValidity {
            not_before,
            not_after,
        },
    )
    .unwrap();
    let pem = std::fs::read(dir.join("admin.pem")).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = block.parse_x509().unwrap();
    assert_eq!(cert.validity().not_before.timestamp(), 1_700_000_000);
    assert_eq!(cert.validity().not_after.timestamp(), 1_700_086_400);
}

#[test]
fn tls_config_reports_unusable_files() {
    let dir = pki();
    let ca = dir.join(CA_CERT_FILE);
    let missing = dir.join("missing.pem");
    let server = dir.join("server.pem");
    let server_key = dir.join("server-key.pem");

    let err = server_tls_config(&missing, &server_key, &ca).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    // Key and certificate swapped.
    let err = server_tls_config(&server_key, &server, &ca).unwrap_err();
    assert!(err.to_string().contains("expected CERTIFICATE"), "{err}");
    // A leaf certificate where the CA belongs.
    let err = server_tls_config(&server, &server_key, &server).unwrap_err();
    assert!(err.to_string().contains("not a CA certificate"), "{err}");

    let scratch = fresh_dir("bad-pem");
    std::fs::create_dir_all(&scratch).unwrap();
    let empty = scratch.join("empty.pem");
    std::fs::write(&empty, b"no pem here\n").unwrap();
    let err = server_tls_config(&empty, &server_key, &ca).unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");

    let garbage = scratch.join("garbage.pem");
    std::fs::write(
        &garbage,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = server_tls_config(&garbage, &server_key, &ca).unwrap_err();
    assert!(matches!(err, TlsError::CertificateParse { .. }), "{err}");

    let two_keys = scratch.join("two-keys.pem");
    let key = std::fs::read(&server_key).unwrap();
    std::fs::write(&two_keys, [key.clone(), key].concat()).unwrap();
    let err = server_tls_config(&server, &two_keys, &ca).unwrap_err();
    assert!(err.to_string().contains("exactly one private key"), "{err}");

    let huge = scratch.join("huge.pem");
    std::fs::write(&huge, vec![b'a'; 1024 * 1024 + 1]).unwrap();
    let err = server_tls_config(&huge, &server_key, &ca).unwrap_err();
    assert!(matches!(err, TlsError::TooLarge { .. }), "{err}");

    assert!(server_tls_config(&server, &server_key, &ca).is_ok());
}
