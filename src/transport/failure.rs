//! Why a request got no answer, in words a user can act on: what failed (the collector's
//! certificate, the proxy, the name, the connection), with which route, and what to change.

use super::route::{DirectReason, Route};
use crate::model::endpoint::Endpoint;
use rustls::{CertificateError, Error as TlsError};

/// The sentence for `error`, which happened on `route` to the collector at `endpoint`.
/// It never carries proxy credentials: routes print without them.
pub(super) fn describe(
    error: &ureq::Error,
    route: &Route,
    endpoint: &Endpoint,
    budget_ms: u64,
) -> String {
    // A TLS failure inside the handshake's I/O, and a failed name lookup, come as I/O errors.
    if let ureq::Error::Io(e) = error {
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsError>())
        {
            return describe(
                &ureq::Error::Rustls(tls.clone()),
                route,
                endpoint,
                budget_ms,
            );
        }
        // std's words for a getaddrinfo failure.
        if e.to_string().contains("failed to lookup address") {
            return describe(&ureq::Error::HostNotFound, route, endpoint, budget_ms);
        }
    }
    describe_error(error, route, endpoint, budget_ms)
}

fn describe_error(
    error: &ureq::Error,
    route: &Route,
    endpoint: &Endpoint,
    budget_ms: u64,
) -> String {
    let (host, port) = (endpoint.host.as_str(), endpoint.port);
    let via = match route {
        Route::Proxy(url, source) => format!(" through the proxy {url} from {source}"),
        _ => String::new(),
    };
    match error {
        ureq::Error::HostNotFound => match route {
            Route::Proxy(url, source) => format!(
                "the proxy host {} (from {source}) cannot be resolved",
                url.host
            ),
            Route::Direct(DirectReason::NoProxy(var, entry)) => format!(
                "{host} cannot be resolved; it goes direct because {var} lists {entry:?}"
            ),
            Route::Direct(DirectReason::SystemBypass(entry)) => format!(
                "{host} cannot be resolved; it goes direct because the Windows proxy bypass list has {entry:?}"
            ),
            Route::Direct(DirectReason::PacDirect(source)) => format!(
                "{host} cannot be resolved; it goes direct because {source} answered DIRECT"
            ),
            _ => format!(
                "{host} cannot be resolved and no proxy is configured (set HTTPS_PROXY if this network needs one)"
            ),
        },
        ureq::Error::ConnectProxyFailed(reason) => {
            let Route::Proxy(url, source) = route else {
                return format!("the proxy failed: {reason}");
            };
            let status = reason
                .strip_prefix("proxy server responded ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse::<u16>().ok());
            match status {
                Some(407) if url.credentials().is_some() => format!(
                    "the proxy {} (from {source}) answered 407: it refused the credentials of the proxy URL",
                    url.without_credentials()
                ),
                Some(407) => format!(
                    "the proxy {} (from {source}) answered 407: it wants credentials; put them in the proxy URL (http://user:password@host:port)",
                    url.without_credentials()
                ),
                Some(status) => format!(
                    "the proxy {} (from {source}) refused the tunnel to {host}:{port}: it answered {status}",
                    url.without_credentials()
                ),
                None => format!(
                    "the proxy {} (from {source}) failed: {reason}",
                    url.without_credentials()
                ),
            }
        }
        ureq::Error::Rustls(TlsError::InvalidCertificate(cert)) => {
            let what = match cert {
                CertificateError::UnknownIssuer => "is not trusted (unknown issuer)".to_owned(),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("is not valid for the name {host}")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired".to_owned()
                }
                CertificateError::Revoked => "is revoked".to_owned(),
                other => format!("is refused ({other:?})"),
            };
            let hint = if matches!(cert, CertificateError::UnknownIssuer) {
                "; install the CA that signed it in the system store, or point SSL_CERT_FILE at a PEM file holding it"
            } else {
                ""
            };
            let inspecting = if matches!(route, Route::Proxy(..)) {
                " (a TLS-inspecting proxy signs with its own CA)"
            } else {
                ""
            };
            let reached = match route {
                Route::Proxy(url, source) => {
                    format!(" (reached through the proxy {url} from {source})")
                }
                _ => String::new(),
            };
            format!("the collector's certificate {what}{reached}{hint}{inspecting}")
        }
        ureq::Error::Rustls(e) => format!("the TLS handshake with {host}{via} failed: {e}"),
        ureq::Error::Timeout(what) => {
            format!("no answer from {host}{via} within {budget_ms} ms ({what})")
        }
        ureq::Error::Io(e) => {
            let target = match route {
                Route::Proxy(url, source) => {
                    format!("the proxy {} (from {source})", url.without_credentials())
                }
                _ => format!("{host}:{port}"),
            };
            match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    format!("{target} refused the connection")
                }
                std::io::ErrorKind::UnexpectedEof => {
                    format!("{target} closed the connection before an HTTP status line")
                }
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    format!("no answer from {host}{via} within {budget_ms} ms")
                }
                _ => format!("the connection to {target} failed: {e}"),
            }
        }
        ureq::Error::LargeResponseHeader(..) => {
            format!("{host}{via} sent a response head over the caps (64 KiB, 128 header lines)")
        }
        ureq::Error::Protocol(e) if e.to_string().contains("too many headers") => {
            format!("{host}{via} sent a response head over the caps (64 KiB, 128 header lines)")
        }
        ureq::Error::Protocol(e) => {
            format!("{host}{via} sent no HTTP status line, or a malformed HTTP answer ({e})")
        }
        other => format!("the request to {host}{via} failed: {other}"),
    }
}
