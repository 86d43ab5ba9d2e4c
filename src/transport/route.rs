//! Which way a request goes: straight to the collector, or through which proxy and why.
//!
//! [`route`] is the one place the rules live; the transport builds its HTTP client from its
//! answer, `telctl probe` prints it, and the failure messages name it.

use crate::endpoint::{Endpoint, Scheme};
use std::fmt;
use std::net::IpAddr;

/// Where a proxy setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxySource {
    /// An environment variable, by its exact name (`HTTPS_PROXY`, `all_proxy`, ...).
    Env(&'static str),
    /// The Windows Internet Settings of the current user (`ProxyServer`).
    System,
}

impl fmt::Display for ProxySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySource::Env(name) => write!(f, "{name}"),
            ProxySource::System => f.write_str("the Windows proxy settings"),
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
                    crate::status::excerpt(s)
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
            Route::Direct(DirectReason::NoProxyConfigured) => {
                f.write_str("direct (no proxy configured)")
            }
            Route::Proxy(url, source) => write!(f, "through the proxy {url} from {source}"),
            Route::Unusable(why) => f.write_str(why),
        }
    }
}

/// The Windows proxy settings of the current user, as [`route`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProxy {
    /// `ProxyServer`: `host:port`, or per protocol `http=h:p;https=h:p`.
    pub server: String,
    /// `ProxyOverride`: `;`-separated host patterns with `*`, and `<local>`.
    pub bypass: String,
}

/// Decides the route of a request to the collector at `endpoint`, reading variables through
/// `env` and the Windows settings through `system` (called only when no variable names a
/// proxy). The rules, in order:
///
/// 1. A **loopback** endpoint (`localhost`, 127.0.0.0/8, `::1`) goes direct, always.
/// 2. The proxy variable: `https_proxy`, then `HTTPS_PROXY`, then `all_proxy`, then
///    `ALL_PROXY` (the first that is set and not empty; an `http://` endpoint, loopback by
///    validation, never gets this far). `http_proxy` is not read: the endpoint is HTTPS.
///    Its value is `[http|https://][user:password@]host[:port]`; the user and password are
///    percent-decoded and sent as Basic `Proxy-Authorization` in the CONNECT request. Any
///    other scheme (e.g. `socks5://`) makes the route unusable, with a sentence saying so.
/// 3. When a variable names a proxy, `no_proxy`, else `NO_PROXY`, as curl reads it: entries
///    separated by commas (spaces around them ignored); `*` alone matches every host; a
///    host name matches itself and every subdomain, with or without a leading dot
///    (`example.com` and `.example.com` both match `a.example.com` and `example.com`); an IP
///    literal matches that address (IPv6 with or without brackets), and `addr/bits` a CIDR
///    range; an entry may end in `:port`, matching only that port. Case is ignored.
/// 4. Else, on Windows, the current user's Internet Settings when `ProxyEnable` is 1:
///    `ProxyServer` (its `https=` entry when it names protocols, else the one server), with
///    `ProxyOverride` as the bypass list (`;`-separated, `*` wildcards, `<local>` for host
///    names without a dot). Automatic detection and PAC scripts are not evaluated.
/// 5. Else direct.
pub fn route(
    endpoint: &Endpoint,
    env: &dyn Fn(&str) -> Option<String>,
    system: &dyn Fn() -> Option<SystemProxy>,
) -> Route {
    if endpoint.loopback || endpoint.scheme == Scheme::Http {
        return Route::Direct(DirectReason::Loopback);
    }
    let (host, port) = (endpoint.host.as_str(), endpoint.port);
    let set = |name: &'static str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let variable = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        .into_iter()
        .find_map(set);
    if let Some((name, value)) = variable {
        if let Some((no_proxy_var, list)) = ["no_proxy", "NO_PROXY"].into_iter().find_map(set) {
            if let Some(entry) = no_proxy_match(&list, host, port) {
                return Route::Direct(DirectReason::NoProxy(no_proxy_var, entry));
            }
        }
        return match ProxyUrl::parse(&value) {
            Ok(url) => Route::Proxy(url, ProxySource::Env(name)),
            Err(why) => Route::Unusable(format!("the proxy in {name} cannot be used: {why}")),
        };
    }
    if let Some(system) = system() {
        if let Some(entry) = system_bypass_match(&system.bypass, host) {
            return Route::Direct(DirectReason::SystemBypass(entry));
        }
        if let Some(server) = system_server(&system.server) {
            return match ProxyUrl::parse(&server) {
                Ok(url) => Route::Proxy(url, ProxySource::System),
                Err(why) => Route::Unusable(format!(
                    "the proxy of the Windows settings cannot be used: {why}"
                )),
            };
        }
    }
    Route::Direct(DirectReason::NoProxyConfigured)
}

/// The route for this process's environment and, on Windows, its proxy settings.
pub fn route_from_system(endpoint: &Endpoint) -> Route {
    route(
        endpoint,
        &|name| std::env::var(name).ok(),
        &super::system_proxy::current,
    )
}

/// The `NO_PROXY` entry that names `host:port`, if any (rule 3 of [`route`]).
pub fn no_proxy_match(list: &str, host: &str, port: u16) -> Option<String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find(|entry| no_proxy_entry_matches(entry, &host, host_ip, port))
        .map(str::to_owned)
}

fn no_proxy_entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = match split_host_port(entry) {
        Some((h, p)) => (h, p),
        None => (entry, None),
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    // CIDR: `10.0.0.0/8`, `fd00::/8`.
    if let Some((net, bits)) = pattern.split_once('/') {
        let (Ok(net), Ok(bits), Some(ip)) = (net.parse::<IpAddr>(), bits.parse::<u32>(), host_ip)
        else {
            return false;
        };
        return in_cidr(ip, net, bits);
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    if host_ip.is_some() {
        return false;
    }
    let pattern = pattern.trim_start_matches('*').trim_start_matches('.');
    let pattern = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    if pattern.is_empty() {
        return false;
    }
    host == pattern
        || (host.len() > pattern.len()
            && host.ends_with(&pattern)
            && host.as_bytes()[host.len() - pattern.len() - 1] == b'.')
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
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

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err("its credentials have a malformed %-escape".into());
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "its credentials are not UTF-8 once decoded".into())
}

/// The server of a `ProxyServer` value for HTTPS requests.
fn system_server(server: &str) -> Option<String> {
    let server = server.trim();
    if server.is_empty() {
        return None;
    }
    if !server.contains('=') {
        return Some(server.to_owned());
    }
    server.split(';').find_map(|part| {
        let (proto, addr) = part.split_once('=')?;
        (proto.trim().eq_ignore_ascii_case("https") && !addr.trim().is_empty())
            .then(|| addr.trim().to_owned())
    })
}

/// The `ProxyOverride` entry that names `host`, if any.
fn system_bypass_match(list: &str, host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    list.split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find(|entry| {
            if entry.eq_ignore_ascii_case("<local>") {
                return !host.contains('.') && host.parse::<IpAddr>().is_err();
            }
            wildcard_match(&entry.to_ascii_lowercase(), &host)
        })
        .map(str::to_owned)
}

/// `*` matches any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "mobile.events.data.microsoft.com";

    fn route_with(vars: &[(&str, &str)], system: Option<SystemProxy>) -> Route {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        route(
            &Endpoint::parse(&format!("https://{HOST}/OneCollector/1.0/")).unwrap(),
            &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            &|| system.clone(),
        )
    }

    fn proxied(r: &Route) -> Option<(String, ProxySource)> {
        match r {
            Route::Proxy(url, source) => Some((url.without_credentials(), source.clone())),
            _ => None,
        }
    }

    #[test]
    fn loopback_is_never_proxied() {
        for host in ["127.0.0.1", "localhost", "127.3.2.1"] {
            let endpoint = Endpoint::parse(&format!("https://{host}:4/")).unwrap();
            let r = route(&endpoint, &|_| Some("http://proxy:3128".into()), &|| None);
            assert_eq!(r, Route::Direct(DirectReason::Loopback), "{host}");
        }
    }

    #[test]
    fn proxy_variables_in_order_either_case() {
        let p = |v: &[(&str, &str)]| proxied(&route_with(v, None));
        assert_eq!(
            p(&[("HTTPS_PROXY", "http://up:1")]),
            Some(("http://up:1".into(), ProxySource::Env("HTTPS_PROXY")))
        );
        assert_eq!(
            p(&[
                ("https_proxy", "http://low:1"),
                ("HTTPS_PROXY", "http://up:1")
            ]),
            Some(("http://low:1".into(), ProxySource::Env("https_proxy")))
        );
        assert_eq!(
            p(&[
                ("ALL_PROXY", "http://all:1"),
                ("HTTPS_PROXY", "http://up:1")
            ]),
            Some(("http://up:1".into(), ProxySource::Env("HTTPS_PROXY")))
        );
        assert_eq!(
            p(&[("ALL_PROXY", "http://all:1")]),
            Some(("http://all:1".into(), ProxySource::Env("ALL_PROXY")))
        );
        assert_eq!(
            p(&[("all_proxy", "low:2"), ("ALL_PROXY", "http://all:1")]),
            Some(("http://low:2".into(), ProxySource::Env("all_proxy")))
        );
        // http_proxy is for http:// requests, and an empty variable is not set.
        assert_eq!(
            route_with(&[("http_proxy", "http://p:1"), ("HTTPS_PROXY", "")], None),
            Route::Direct(DirectReason::NoProxyConfigured)
        );
    }

    #[test]
    fn no_proxy_as_curl_reads_it() {
        let m = |list: &str, host: &str, port: u16| no_proxy_match(list, host, port).is_some();
        assert!(m("*", "a.b", 443));
        assert!(m("example.com", "example.com", 443));
        assert!(m("example.com", "a.example.com", 443));
        assert!(m(".example.com", "example.com", 443));
        assert!(m(".example.com", "x.y.example.com", 443));
        assert!(m("*.example.com", "x.example.com", 443));
        assert!(!m("example.com", "badexample.com", 443));
        assert!(!m("a.example.com", "example.com", 443));
        assert!(m(" other , Example.COM ", "example.com", 443));
        assert!(m("example.com:443", "example.com", 443));
        assert!(!m("example.com:8443", "example.com", 443));
        assert!(m("10.1.2.3", "10.1.2.3", 443));
        assert!(!m("10.1.2.3", "10.1.2.4", 443));
        assert!(m("10.0.0.0/8", "10.1.2.4", 443));
        assert!(!m("10.0.0.0/8", "11.1.2.4", 443));
        assert!(m("::2", "::2", 443));
        assert!(m("[::2]", "[::2]", 443));
        assert!(m("[::2]:443", "::2", 443));
        assert!(m("fd00::/8", "fd12::1", 443));
        assert!(!m("", "example.com", 443));
        assert!(!m("10.1.2.3", "example.com", 443));
    }

    #[test]
    fn no_proxy_applies_to_proxy_variables() {
        let r = route_with(
            &[
                ("HTTPS_PROXY", "http://p:1"),
                ("NO_PROXY", ".microsoft.com"),
            ],
            None,
        );
        assert_eq!(
            r,
            Route::Direct(DirectReason::NoProxy("NO_PROXY", ".microsoft.com".into()))
        );
        let r = route_with(
            &[
                ("HTTPS_PROXY", "http://p:1"),
                ("no_proxy", "other.com"),
                ("NO_PROXY", "*"),
            ],
            None,
        );
        assert!(proxied(&r).is_some(), "no_proxy is read before NO_PROXY");
    }

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
        assert!(matches!(
            route_with(&[("HTTPS_PROXY", "socks5://p:1080")], None),
            Route::Unusable(_)
        ));
    }

    #[test]
    fn windows_settings_come_after_the_variables() {
        let system = SystemProxy {
            server: "http=h:1;https=sys:8080".into(),
            bypass: "*.corp;<local>".into(),
        };
        assert_eq!(
            proxied(&route_with(&[], Some(system.clone()))),
            Some(("http://sys:8080".into(), ProxySource::System))
        );
        assert_eq!(
            proxied(&route_with(
                &[("HTTPS_PROXY", "env:1")],
                Some(system.clone())
            )),
            Some(("http://env:1".into(), ProxySource::Env("HTTPS_PROXY")))
        );
        let only_http = SystemProxy {
            server: "http=h:1".into(),
            bypass: String::new(),
        };
        assert_eq!(
            route_with(&[], Some(only_http)),
            Route::Direct(DirectReason::NoProxyConfigured)
        );
        assert_eq!(
            system_bypass_match("*.corp;<local>", "a.corp"),
            Some("*.corp".into())
        );
        assert_eq!(
            system_bypass_match("<local>", "intranet"),
            Some("<local>".into())
        );
        assert_eq!(system_bypass_match("<local>", "a.b"), None);
        assert_eq!(system_bypass_match("10.*", "10.1.1.1"), Some("10.*".into()));
        assert_eq!(
            system_bypass_match("*.microsoft.com", HOST),
            Some("*.microsoft.com".into())
        );
        assert_eq!(system_server(" sys:1 "), Some("sys:1".into()));
    }
}
