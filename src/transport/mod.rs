//! One HTTPS POST of a batch: body encoding, the request headers of protocol.md, the route
//! ([`route::rules::route`]), a deadline on the whole exchange, caps on what is read back, header
//! lines no parser accepts left out ([`header_lines`]), and connections kept for the next
//! request.
//!
//! The HTTP client is ureq: HTTP/1.1 with keep-alive, CONNECT tunnels, rustls (ring) and the
//! operating system's certificate verifier (`rustls-platform-verifier`: the Windows and macOS
//! verifiers; on Linux the system store, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`).
//! Certificate checks are never switched off.

pub(crate) mod codec;
mod failure;
mod header_lines;
pub(crate) mod reply;
pub mod route;
mod system_proxy;

use crate::model::config::Config;
use crate::model::endpoint::Endpoint;
use crate::model::ext::SDK_VERSION;
use crate::sys::log::{tel_log, Level};
use reply::{HttpResponse, NetworkError, MAX_RESPONSE_BODY, MAX_RESPONSE_HEADERS};
use route::Route;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::Connector as _;

/// How long an idle connection is kept for the next request: below the 30 s or more that
/// collectors and proxies commonly keep one, so the client lets go first. A connection the
/// server closed sooner is seen closed before it is used (a non-blocking read finds its end)
/// and replaced at once, which costs neither an event nor an attempt.
pub const IDLE_CONNECTION_AGE: Duration = Duration::from_secs(20);

/// Distinct failure causes remembered for the once-per-cause warning.
const MAX_WARNED_CAUSES: usize = 32;

/// The most each of WinHTTP's timeouts may be while it evaluates the automatic proxy
/// configuration (fetching a PAC script, detecting one); below that, `http_timeout_ms`.
pub const AUTOMATIC_PROXY_TIMEOUT_MS: u64 = 10_000;

pub struct Transport {
    endpoint: Endpoint,
    api_key: String,
    http_timeout_ms: u64,
    reuse: bool,
    /// The Windows automatic proxy configuration when it is still to be evaluated: on the first
    /// request (on the worker thread, not in `tel_init`), which fills `ready`.
    automatic: Option<route::Automatic>,
    ready: OnceLock<Ready>,
    warned: Mutex<Vec<String>>,
    /// Header lines of answers left out as malformed (see [`header_lines`]).
    dropped_headers: Arc<header_lines::Dropped>,
}

/// The decided route and the client built for it.
struct Ready {
    route: Route,
    /// The client whose pool keeps the connection and whose TLS configuration keeps the
    /// sessions to resume. `None` with `Config::connection_reuse` off: every request then gets
    /// a client of its own (a new connection and a full handshake).
    agent: Option<ureq::Agent>,
    /// Registered with the logging module's redaction for as long as the transport lives.
    _proxy_credentials: Option<Arc<ProxyCredentials>>,
}

impl Ready {
    fn new(
        route: Route,
        http_timeout_ms: u64,
        reuse: bool,
        endpoint: &Endpoint,
        dropped_headers: &Arc<header_lines::Dropped>,
    ) -> Ready {
        // Our own lines never carry the proxy's credentials; this keeps them out of any other
        // while the transport lives.
        let proxy_credentials = match &route {
            Route::Proxy(url, _) => url.credentials().map(|(user, password)| {
                let secret = Arc::new(ProxyCredentials(format!("{user}:{password}")));
                crate::sys::log::add_secret(
                    Arc::downgrade(&secret) as std::sync::Weak<dyn crate::sys::log::Redact>
                );
                secret
            }),
            _ => None,
        };
        let agent = reuse.then(|| agent(&route, http_timeout_ms, true, endpoint, dropped_headers));
        Ready {
            route,
            agent,
            _proxy_credentials: proxy_credentials,
        }
    }
}

/// `user:password` of the proxy, masked in every log line.
struct ProxyCredentials(String);

impl crate::sys::log::Redact for ProxyCredentials {
    fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "***")
    }
}

/// What the transport reads of a configuration, and nothing else.
#[derive(Clone)]
pub struct Settings {
    pub endpoint: Endpoint,
    /// The `x-apikey` header: the full instrumentation key (so not `Debug`).
    pub api_key: String,
    /// The whole exchange of one request, connection and TLS included.
    pub http_timeout_ms: u64,
    /// Keep the connection (and the TLS sessions to resume) for the next request.
    pub connection_reuse: bool,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Settings {
        Settings {
            endpoint: config.endpoint.clone(),
            api_key: config.ikey.header_value().to_owned(),
            http_timeout_ms: config.http_timeout_ms,
            connection_reuse: config.connection_reuse,
        }
    }
}

impl Transport {
    pub fn new(settings: impl Into<Settings>) -> Self {
        let settings = settings.into();
        let route = route::rules::route_from_system(&settings.endpoint);
        Self::with_route(settings, route)
    }

    /// A transport that takes `route` instead of reading the environment. A
    /// [`Route::Automatic`] is evaluated on the first request (or the first call of
    /// [`Transport::route`]); any other is final at once.
    pub fn with_route(settings: impl Into<Settings>, route: Route) -> Self {
        let Settings {
            endpoint,
            api_key,
            http_timeout_ms,
            connection_reuse: reuse,
        } = settings.into();
        tel_log!(Level::Debug, "route to the collector: {route}");
        let ready = OnceLock::new();
        let dropped_headers = Arc::default();
        let automatic = match route {
            Route::Automatic(auto) => Some(auto),
            route => {
                let _ = ready.set(Ready::new(
                    route,
                    http_timeout_ms,
                    reuse,
                    &endpoint,
                    &dropped_headers,
                ));
                None
            }
        };
        Transport {
            endpoint,
            api_key,
            http_timeout_ms,
            reuse,
            automatic,
            ready,
            warned: Mutex::new(Vec::new()),
            dropped_headers,
        }
    }

    /// The way requests go, for `telctl probe` and the logs. When the route is the Windows
    /// automatic proxy configuration and no request has evaluated it yet, this evaluates it,
    /// blocking for as long as WinHTTP takes.
    pub fn route(&self) -> &Route {
        &self.ready().route
    }

    /// The route and its client, evaluating the automatic proxy configuration the first time.
    fn ready(&self) -> &Ready {
        self.ready.get_or_init(|| {
            let auto = self
                .automatic
                .as_ref()
                .expect("a transport without a route has an automatic configuration");
            let timeout_ms = self.http_timeout_ms.clamp(1, AUTOMATIC_PROXY_TIMEOUT_MS);
            let url = self.endpoint.url.as_str();
            let resolved = route::windows::resolve_automatic(auto, &mut |source| {
                system_proxy::evaluate(source, url, timeout_ms)
            });
            if let Some(why) = &resolved.failure {
                tel_log!(
                    Level::Warn,
                    "the Windows automatic proxy configuration gave no usable answer ({why}); requests go {} instead",
                    resolved.route
                );
            }
            tel_log!(
                Level::Debug,
                "route to the collector, from the automatic proxy configuration: {}",
                resolved.route
            );
            Ready::new(
                resolved.route,
                self.http_timeout_ms,
                self.reuse,
                &self.endpoint,
                &self.dropped_headers,
            )
        })
    }

    /// The request headers of protocol.md.
    fn headers(
        &self,
        encoding: Option<&'static str>,
        time_delta_ms: Option<i64>,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (
                "Content-Type",
                "application/x-json-stream; charset=utf-8".to_owned(),
            ),
            ("x-apikey", self.api_key.clone()),
            ("Client-Id", "NO_AUTH".to_owned()),
            ("sdk-version", SDK_VERSION.to_owned()),
            ("Upload-Time", crate::sys::clock::now_ms().to_string()),
        ];
        if let Some(enc) = encoding {
            headers.push(("Content-Encoding", enc.to_owned()));
        }
        if let Some(delta) = time_delta_ms {
            headers.push(("time-delta-to-apply-millis", delta.to_string()));
        }
        headers
    }

    /// POSTs an encoded body (see [`encode`](codec::encode)). The exchange ends by `deadline` at the latest,
    /// and by `http_timeout_ms` from now.
    pub fn post(
        &self,
        payload: &[u8],
        encoding: Option<&'static str>,
        time_delta_ms: Option<i64>,
        deadline: Option<Instant>,
    ) -> Result<HttpResponse, NetworkError> {
        let headers = self.headers(encoding, time_delta_ms);
        self.send(&headers, payload, deadline)
    }

    /// POSTs `payload` with exactly `headers` (`telctl probe` varies them). Failures come back
    /// as a sentence a user can act on, and each distinct one is logged once at warn level.
    pub fn send(
        &self,
        headers: &[(&str, String)],
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<HttpResponse, NetworkError> {
        let result = self.exchange(headers, payload, deadline);
        if let Err(e) = &result {
            self.warn_once(&e.0);
        }
        result
    }

    fn exchange(
        &self,
        headers: &[(&str, String)],
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<HttpResponse, NetworkError> {
        let remaining = || {
            let mut budget_ms = self.http_timeout_ms;
            if let Some(d) = deadline {
                budget_ms =
                    budget_ms.min(d.saturating_duration_since(Instant::now()).as_millis() as u64);
            }
            budget_ms
        };
        let ready = match self.ready.get() {
            Some(ready) => ready,
            // The automatic proxy configuration is evaluated only with time left for it.
            None if remaining() == 0 => {
                return Err(NetworkError("no time left for the request".into()))
            }
            None => self.ready(),
        };
        if let Route::Unusable(why) = &ready.route {
            return Err(NetworkError(why.clone()));
        }
        // Evaluating the automatic proxy configuration may have taken some of it.
        let budget_ms = remaining();
        if budget_ms == 0 {
            return Err(NetworkError("no time left for the request".into()));
        }
        let own;
        let agent = match &ready.agent {
            Some(agent) => agent,
            None => {
                own = agent(
                    &ready.route,
                    self.http_timeout_ms,
                    false,
                    &self.endpoint,
                    &self.dropped_headers,
                );
                &own
            }
        };
        let mut request = agent.post(self.endpoint.url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        // The client's own timeout is `http_timeout_ms`; a shorter budget (a shutdown deadline)
        // is set on this request alone, so the common request keeps the client's TLS
        // configuration and with it the sessions to resume.
        let request = if budget_ms < self.http_timeout_ms {
            request
                .config()
                .timeout_global(Some(Duration::from_millis(budget_ms)))
                .build()
        } else {
            request
        };
        match request.send(payload) {
            Ok(response) => Ok(read_response(response)),
            Err(e) => Err(NetworkError(failure::describe(
                &e,
                &ready.route,
                &self.endpoint,
                budget_ms,
            ))),
        }
    }

    fn warn_once(&self, cause: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.iter().any(|c| c == cause) {
            return;
        }
        if warned.len() >= MAX_WARNED_CAUSES {
            warned.remove(0);
        }
        warned.push(cause.to_owned());
        drop(warned);
        tel_log!(Level::Warn, "cannot reach the collector: {cause}");
    }
}

/// Idle connections the pool may keep: `max_inflight_requests` at its largest.
pub const KEPT_CONNECTIONS: usize = 16;

/// The HTTP client for `route`: no redirects followed (the key never goes elsewhere), every
/// status returned as a response, the header cap, `http_timeout_ms` on the whole exchange,
/// with `reuse` the connections kept per collector for [`IDLE_CONNECTION_AGE`] (one per request
/// in flight, up to [`KEPT_CONNECTIONS`]: the pool only keeps what was opened), and under the
/// parser the filter of [`header_lines`], so that a malformed optional header does not turn an
/// answer into a network failure.
fn agent(
    route: &Route,
    http_timeout_ms: u64,
    reuse: bool,
    endpoint: &Endpoint,
    dropped_headers: &Arc<header_lines::Dropped>,
) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::PlatformVerifier)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let proxy = match route {
        Route::Proxy(url, _) => proxy(url),
        _ => None,
    };
    let idle = if reuse { KEPT_CONNECTIONS } else { 0 };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(SDK_VERSION)
        .max_response_header_size(MAX_RESPONSE_HEADERS)
        .timeout_global(Some(Duration::from_millis(http_timeout_ms.max(1))))
        .max_idle_connections(idle)
        .max_idle_connections_per_host(idle)
        .max_idle_age(IDLE_CONNECTION_AGE)
        // The route decided already: ureq's own reading of the environment stays out.
        .proxy(proxy)
        .tls_config(tls)
        .build();
    // ureq's own chain (TCP, CONNECT tunnel, TLS), then the filter: it sees the answer as the
    // parser would, decrypted and inside any tunnel.
    let connector =
        ureq::unversioned::transport::DefaultConnector::new().chain(header_lines::Filter {
            host: endpoint.host.clone(),
            port: endpoint.port,
            dropped: dropped_headers.clone(),
        });
    ureq::Agent::with_parts(
        config,
        connector,
        ureq::unversioned::resolver::DefaultResolver::default(),
    )
}

/// ureq's form of a proxy of the route (credentials as they were decoded, re-encoded once).
fn proxy(url: &route::ProxyUrl) -> Option<ureq::Proxy> {
    let protocol = match url.scheme {
        "https" => ureq::ProxyProtocol::Https,
        _ => ureq::ProxyProtocol::Http,
    };
    let mut builder = ureq::Proxy::builder(protocol)
        .host(&url.host)
        .port(url.port);
    if let Some((user, password)) = url.credentials() {
        builder = builder.username(user).password(password);
    }
    builder.build().ok()
}

/// Reads a response within the caps: headers lowercased, at most [`MAX_RESPONSE_BODY`] bytes of
/// body (a body cut short keeps what was read).
fn read_response(response: ureq::http::Response<ureq::Body>) -> HttpResponse {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(MAX_RESPONSE_BODY as u64)
        .read_to_end(&mut body);
    HttpResponse {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use route::{Automatic, DirectReason};

    #[test]
    fn the_automatic_configuration_waits_for_first_use() {
        let mut config = Config::new("autopx-0000-0000-0000-000000000000-0000").unwrap();
        config.endpoint = Endpoint::parse("https://collector.test/OneCollector/1.0/").unwrap();
        let fallback = Route::Direct(DirectReason::NoProxyConfigured);
        let transport = Transport::with_route(
            &config,
            Route::Automatic(Automatic {
                auto_detect: false,
                pac_url: Some("http://127.0.0.1:9/proxy.pac".into()),
                fallback: Box::new(fallback.clone()),
            }),
        );
        assert!(transport.ready.get().is_none(), "evaluated at init");
        // Off Windows the evaluation fails at once, on Windows the script cannot be fetched
        // (nothing serves it): the static settings are taken.
        assert_eq!(transport.route(), &fallback);
        assert!(transport.ready.get().is_some());

        let transport = Transport::with_route(&config, fallback.clone());
        assert!(
            transport.ready.get().is_some(),
            "a static route is final at init"
        );
    }
}
