//! One HTTPS POST of a batch: body encoding, the request headers of protocol.md, a deadline on
//! the whole exchange and caps on what is read back.

mod direct;

use crate::config::Config;
use crate::endpoint::Scheme;
use crate::response::{HttpResponse, NetworkError};
use std::time::Instant;

/// Most of a response body that is read; the rest is left unread.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Most header bytes accepted before the response is treated as garbage.
pub const MAX_RESPONSE_HEADERS: usize = 64 * 1024;

pub const SDK_VERSION: &str = crate::SDK_VERSION;

pub struct Transport {
    url: String,
    /// A plain-http endpoint (loopback by validation): it must never go through a proxy.
    plain_http: bool,
    /// minreq cannot parse an IPv6 literal: such (loopback) endpoints take the direct path.
    ipv6_host: bool,
    api_key: String,
    http_timeout_ms: u64,
}

// The body codec lives below the transport; kept reachable here for the tools and tests.
pub use crate::codec::{encode, ndjson};

impl Transport {
    pub fn new(config: &Config) -> Self {
        Transport {
            url: config.endpoint.url.clone(),
            plain_http: config.endpoint.scheme == Scheme::Http,
            ipv6_host: config.endpoint.is_ipv6(),
            api_key: config.ikey.header_value().to_owned(),
            http_timeout_ms: config.http_timeout_ms,
        }
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
            ("Upload-Time", crate::clock::now_ms().to_string()),
        ];
        if let Some(enc) = encoding {
            headers.push(("Content-Encoding", enc.to_owned()));
        }
        if let Some(delta) = time_delta_ms {
            headers.push(("time-delta-to-apply-millis", delta.to_string()));
        }
        headers
    }

    /// POSTs an encoded body (see [`encode`]). The exchange ends by `deadline` at the latest,
    /// and by `http_timeout_ms` from now.
    pub fn post(
        &self,
        payload: &[u8],
        encoding: Option<&'static str>,
        time_delta_ms: Option<i64>,
        deadline: Option<Instant>,
    ) -> Result<HttpResponse, NetworkError> {
        let now = Instant::now();
        let mut budget_ms = self.http_timeout_ms;
        if let Some(d) = deadline {
            budget_ms = budget_ms.min(d.saturating_duration_since(now).as_millis() as u64);
        }
        if budget_ms == 0 {
            return Err(NetworkError("no time left for the request".into()));
        }
        let headers = self.headers(encoding, time_delta_ms);
        if self.plain_http && (self.ipv6_host || direct::http_proxy_is_set()) {
            let deadline = now + std::time::Duration::from_millis(budget_ms);
            return direct::post(&self.url, &headers, payload, deadline);
        }
        let mut req = minreq::post(self.url.as_str())
            // minreq counts whole seconds; round up so a short budget is not zero.
            .with_timeout(budget_ms.div_ceil(1000))
            .with_follow_redirects(false)
            .with_max_headers_size(MAX_RESPONSE_HEADERS)
            .with_max_status_line_length(1024)
            .with_body(payload.to_vec());
        for (name, value) in headers {
            req = req.with_header(name, value);
        }
        let lazy = req.send_lazy().map_err(|e| NetworkError(describe(&e)))?;
        read_response(lazy)
    }
}

/// Reads a response within the caps: headers lowercased, at most [`MAX_RESPONSE_BODY`] bytes of
/// body (the rest is left unread). Shared with `telctl probe`, which builds its own requests.
pub fn read_response(lazy: minreq::ResponseLazy) -> Result<HttpResponse, NetworkError> {
    // minreq reports a missing or unreadable status line as a made-up 503.
    if lazy.reason_phrase == "Server did not provide a status line" {
        return Err(NetworkError(
            "the collector sent no HTTP status line (connection closed or garbage)".into(),
        ));
    }
    let status = lazy.status_code;
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| NetworkError(format!("invalid HTTP status {status}")))?;
    let headers: Vec<(String, String)> = lazy
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let mut body = Vec::new();
    for byte in lazy {
        match byte {
            Ok((b, _)) if body.len() < MAX_RESPONSE_BODY => body.push(b),
            // Past the cap, or a body cut short: keep what was read.
            _ => break,
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn describe(e: &minreq::Error) -> String {
    let text = e.to_string();
    if text.is_empty() {
        format!("{e:?}")
    } else {
        text
    }
}
