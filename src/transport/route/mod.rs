//! Which way a request goes: straight to the collector, or through which proxy and why.
//!
//! [`rules::route`] is the one place the rules live; the transport builds its HTTP client from
//! its answer, `telctl probe` prints it, and the failure messages name it. `no_proxy` reads
//! `NO_PROXY` as curl does, and `windows` reads the Windows settings: the static proxy and its
//! bypass list, and the answers of the automatic configuration (PAC scripts).

pub(crate) mod no_proxy;
pub(crate) mod rules;
pub(crate) mod windows;

use super::system_proxy::AutoSource;
use std::fmt;

/// Where a proxy setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySource {
    /// An environment variable, by its exact name (`HTTPS_PROXY`, `all_proxy`, ...).
    Env(&'static str),
    /// The Windows Internet Settings of the current user (`ProxyServer`).
    System,
    /// The PAC script of the Windows automatic proxy configuration, as WinHTTP evaluated it.
    Automatic(AutoSource),
}

impl fmt::Display for ProxySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySource::Env(name) => write!(f, "{name}"),
            ProxySource::System => f.write_str("the Windows proxy settings"),
            ProxySource::Automatic(source) => write!(f, "{source}"),
        }
    }
}

/// A proxy to send through. Its credentials never show: `Display` and `Debug` print
/// `http://127.0.0.1:3128` and say only whether credentials are present.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `http` or `https` (the protocol spoken to the proxy itself).
    pub scheme: &'static str,
    pub host: String,
    pub port: u16,
    /// Percent-decoded user name and password, sent as Basic `Proxy-Authorization`.
    credentials: Option<(String, String)>,
}

impl ProxyUrl {
    /// Parses `[scheme://][user[:password]@]host[:port][/]` as curl does: no scheme means
    /// `http://`, no port means 1080 for `http` (curl's default) and 443 for `https`. User and
    /// password are percent-decoded.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => ("http", rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => ("https", rest),
            Some((s, _)) => {
                return Err(format!(
                    "the scheme {:?} is not supported (http:// or https:// proxies only)",
                    crate::model::status::excerpt(s)
                ))
            }
            None => ("http", text),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = match userinfo {
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                Some((percent_decode(user)?, percent_decode(password)?))
            }
            None => None,
        };
        let (host, port) = split_host_port(hostport).ok_or("it has a malformed host or port")?;
        if host.is_empty() {
            return Err("it has no host".into());
        }
        let port = port.unwrap_or(if scheme == "https" { 443 } else { 1080 });
        Ok(ProxyUrl {
            scheme,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// The user name and password to send, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `scheme://host:port`, without credentials.
    pub fn without_credentials(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host_for_url(), self.port)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.without_credentials())?;
        if self.credentials.is_some() {
            f.write_str(" (with credentials)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Why a request goes straight to the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectReason {
    /// The endpoint is a loopback host: never proxied, whatever the settings say.
    Loopback,
    /// `NO_PROXY` (or `no_proxy`) names the host; the variable and the matching entry.
    NoProxy(&'static str, String),
    /// The Windows bypass list (`ProxyOverride`) names the host.
    SystemBypass(String),
    /// The PAC script of the Windows automatic proxy configuration answered `DIRECT`.
    PacDirect(AutoSource),
    /// No proxy is configured.
    NoProxyConfigured,
}

/// The way a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct(DirectReason),
    Proxy(ProxyUrl, ProxySource),
    /// A proxy is configured but cannot be used; requests fail with this sentence rather than
    /// go around a proxy the user asked for.
    Unusable(String),
    /// The Windows automatic proxy configuration, not evaluated yet: [`windows::resolve_automatic`]
    /// turns it into one of the routes above, on the first request (the PAC script may take
    /// seconds to fetch, which `tel_init` must not wait for).
    Automatic(Automatic),
}

/// The automatic part of the Windows proxy settings, with the route to take when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automatic {
    /// "Automatically detect settings" (WPAD).
    pub auto_detect: bool,
    /// "Use setup script": the PAC script's URL.
    pub pac_url: Option<String>,
    /// The route of the static settings (proxy and bypass list, else direct).
    pub fallback: Box<Route>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct(DirectReason::Loopback) => {
                f.write_str("direct (loopback endpoint, never proxied)")
            }
            Route::Direct(DirectReason::NoProxy(var, entry)) => {
                write!(f, "direct ({var} entry {entry:?} names the host)")
            }
            Route::Direct(DirectReason::SystemBypass(entry)) => write!(
                f,
                "direct (the Windows proxy bypass list entry {entry:?} names the host)"
            ),
            Route::Direct(DirectReason::PacDirect(source)) => {
                write!(f, "direct ({source} answered DIRECT)")
            }
            Route::Direct(DirectReason::NoProxyConfigured) => {
                f.write_str("direct (no proxy configured)")
            }
            Route::Proxy(url, source) => write!(f, "through the proxy {url} from {source}"),
            Route::Unusable(why) => f.write_str(why),
            Route::Automatic(auto) => {
                f.write_str("the Windows automatic proxy configuration (")?;
                match (auto.auto_detect, &auto.pac_url) {
                    (true, Some(url)) => {
                        write!(f, "automatic detection, then the PAC script at {url}")?
                    }
                    (true, None) => f.write_str("automatic detection")?,
                    (false, Some(url)) => write!(f, "the PAC script at {url}")?,
                    (false, None) => f.write_str("nothing to evaluate")?,
                }
                write!(
                    f,
                    "; when it fails: {}), evaluated on the first request",
                    auto.fallback
                )
            }
        }
    }
}

/// `host[:port]`, `[v6]:port`, or a bare IPv6 literal. None when a port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some((s, None));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// A user name or password of a proxy URL, percent-decoded. A `%` not followed by two hex
/// digits is refused rather than passed on as it is: the proxy would refuse those credentials
/// with a 407 that says less than this.
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let malformed = (0..b.len()).any(|i| {
        b[i] == b'%'
            && !b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err("its credentials have a malformed %-escape".into());
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "its credentials are not UTF-8 once decoded".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let url = ProxyUrl::parse("http://us%65r:p%40ss@proxy.corp:3128/").unwrap();
        assert_eq!(url.credentials(), Some(("user", "p@ss")));
        assert_eq!(url.host, "proxy.corp");
        assert_eq!(url.port, 3128);
        let shown = format!(
            "{url} {url:?} {}",
            Route::Proxy(url.clone(), ProxySource::Env("X"))
        );
        assert!(!shown.contains("p@ss") && !shown.contains("p%40ss") && !shown.contains("user"));
        assert!(shown.contains("with credentials"));
        assert_eq!(ProxyUrl::parse("proxy").unwrap().port, 1080);
        assert_eq!(ProxyUrl::parse("https://proxy").unwrap().port, 443);
        assert_eq!(ProxyUrl::parse("http://[::1]:8080").unwrap().host, "::1");
        assert!(ProxyUrl::parse("socks5://proxy:1080").is_err());
        assert!(ProxyUrl::parse("http://u:%zz@proxy:1").is_err());
    }

    #[test]
    fn a_percent_escape_is_two_hex_digits() {
        let password =
            |url: &str| ProxyUrl::parse(url).map(|u| u.credentials().map(|(_, p)| p.to_owned()));
        assert_eq!(
            password("http://u:%C3%A9t%C3%A9@p:1"),
            Ok(Some("été".into()))
        );
        assert_eq!(password("http://u:100%25@p:1"), Ok(Some("100%".into())));
        // A sign is no digit, and an escape cut short is no escape: refused, never guessed.
        for malformed in ["http://u:%+4@p:1", "http://u:%-0@p:1", "http://u:a%4@p:1"] {
            assert!(password(malformed).is_err(), "{malformed}");
        }
        assert!(
            password("http://u:%FF@p:1").is_err(),
            "not UTF-8 once decoded"
        );
    }
}
