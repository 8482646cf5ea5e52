//! The tower layer that turns a verified TLS peer certificate into an allow/deny decision per
//! gRPC method, before any service code runs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::transport::CertificateDer;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::caller::{Caller, caller_from_certificate};
use crate::policy::allowed;

/// The caller the layer admitted, as the service sees it: `caller(request.extensions())`.
///
/// `None` means the request did not pass through a [`RoleLayer`]; services should refuse it.
pub fn caller(extensions: &http::Extensions) -> Option<&Caller> {
    extensions.get::<Caller>()
}

/// Decides one request from its peer's end-entity certificate (DER) and its method path.
///
/// No certificate or an unreadable one is UNAUTHENTICATED; a certificate without any known
/// role, or whose roles the policy does not list for the method, is PERMISSION_DENIED.
pub fn authorize(peer_certificate: Option<&[u8]>, method_path: &str) -> Result<Caller, Status> {
    let Some(der) = peer_certificate else {
        return Err(Status::unauthenticated(
            "a client certificate from the Vigil CA is required",
        ));
    };
    let caller = caller_from_certificate(der)
        .map_err(|e| Status::unauthenticated(format!("client certificate rejected: {e}")))?;
    if caller.roles.is_empty() {
        return Err(Status::permission_denied(format!(
            "client certificate {:?} carries no urn:vigil:role URI",
            caller.subject
        )));
    }
    if !allowed(method_path, &caller.roles) {
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
        return Err(Status::permission_denied(format!(
            "{method_path} is not allowed for roles [{}]",
            roles.join(", ")
        )));
    }
    Ok(caller)
}

/// The peer certificates tonic recorded for this connection, if any. Only TCP+TLS
/// connections carry them; anything else (plain TCP, a custom listener) has none.
fn peer_certificates(
    extensions: &http::Extensions,
) -> Option<std::sync::Arc<Vec<CertificateDer<'static>>>> {
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Enforce,
    Dev,
}

/// `Server::builder().layer(RoleLayer::new())`: checks every request against the policy.
#[derive(Debug, Clone, Copy)]
pub struct RoleLayer {
    mode: Mode,
}

impl RoleLayer {
    /// Enforcing layer: mTLS peer certificate required, policy applied.
    pub fn new() -> Self {
        RoleLayer {
            mode: Mode::Enforce,
        }
    }

    /// For `--dev` (no TLS): admits everything and inserts [`Caller::dev`], so services keep
    /// one code path. Never use together with TLS in production.
    pub fn dev() -> Self {
        RoleLayer { mode: Mode::Dev }
    }
}

impl Default for RoleLayer {
    fn default() -> Self {
        RoleLayer::new()
    }
}

impl<S> tower_layer::Layer<S> for RoleLayer {
    type Service = RoleService<S>;

    fn layer(&self, inner: S) -> RoleService<S> {
        RoleService {
            inner,
            mode: self.mode,
        }
    }
}

/// The service [`RoleLayer`] wraps around tonic's router.
#[derive(Debug, Clone)]
pub struct RoleService<S> {
    inner: S,
    mode: Mode,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for RoleService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = RoleFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let decision = match self.mode {
            Mode::Dev => Ok(Caller::dev()),
            Mode::Enforce => {
                // The first certificate is the client's own; rustls has verified the chain.
                let certs = peer_certificates(request.extensions());
                let end_entity = certs.as_ref().and_then(|certs| certs.first());
                authorize(end_entity.map(|der| der.as_ref()), request.uri().path())
            }
        };
        match decision {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                // The clone is not necessarily ready; call the one poll_ready was called on.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                RoleFuture::Admitted {
                    future: ready.call(request),
                }
            }
            Err(status) => RoleFuture::Refused { status },
        }
    }
}

pin_project_lite::pin_project! {
    /// Either the inner service's response, or a gRPC error status answered by the layer
    /// (HTTP 200 with `grpc-status`, as gRPC clients expect).
    #[project = RoleFutureProjection]
    pub enum RoleFuture<F> {
        Admitted { #[pin] future: F },
        Refused { status: Status },
    }
}

impl<F, ResBody, E> Future for RoleFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<http::Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RoleFutureProjection::Admitted { future } => future.poll(cx),
            RoleFutureProjection::Refused { status } => Poll::Ready(Ok(status.clone().into_http())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev_certs::testing::TestCa;
    use crate::role::Role;
    use tonic::Code;

    #[test]
    fn no_or_unreadable_certificate_is_unauthenticated() {
        let err = authorize(None, "/grpc.health.v1.Health/Check").unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let err =
            authorize(Some(b"not a certificate"), "/grpc.health.v1.Health/Check").unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn roles_decide() {
        let ca = TestCa::new();
        let attester = ca.client_der(&["urn:vigil:role:attester", "urn:vigil:node:n1"]);
        let admin = ca.client_der(&["urn:vigil:role:admin"]);
        let nobody = ca.client_der(&["urn:vigil:role:root"]);

        let err = authorize(Some(&attester), "/vigil.v1.Baselines/Put").unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().contains("attester"), "{}", err.message());

        let caller = authorize(Some(&attester), "/vigil.v1.Verifier/Attest").unwrap();
        assert_eq!(caller.node_id.as_deref(), Some("n1"));
        assert!(
            authorize(Some(&admin), "/vigil.v1.Baselines/Put")
                .unwrap()
                .has_role(Role::Admin)
        );

        let err = authorize(Some(&nobody), "/grpc.health.v1.Health/Check").unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(
            err.message().contains("no urn:vigil:role"),
            "{}",
            err.message()
        );

        let err = authorize(Some(&admin), "/vigil.v1.Nope/Nothing").unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }

    #[test]
    fn refusal_is_a_grpc_status_response() {
        let status = Status::permission_denied("no");
        let response: http::Response<tonic::body::Body> = status.into_http();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "7");
    }
}
