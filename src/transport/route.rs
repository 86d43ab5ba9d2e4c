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
    /// The PAC script of the Windows automatic proxy configuration, as WinHTTP evaluated it.
    Automatic(AutoSource),
}

/// Which part of the Windows automatic proxy configuration gave the PAC script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoSource {
    /// "Automatically detect settings": the script WPAD found (DHCP, then DNS).
    Detected,
    /// "Use setup script": the script at this URL.
    Url(String),
}

impl fmt::Display for AutoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoSource::Detected => {
                f.write_str("the PAC script found by automatic proxy detection (WPAD)")
            }
            AutoSource::Url(url) => write!(f, "the PAC script at {url}"),
        }
    }
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
    /// The Windows automatic proxy configuration, not evaluated yet: [`resolve_automatic`]
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

/// The Windows proxy settings of the current user, as [`route`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProxy {
    /// "Automatically detect settings" (WPAD).
    pub auto_detect: bool,
    /// "Use setup script": the URL of a PAC script.
    pub pac_url: Option<String>,
    /// The static proxy (`ProxyServer`): `host:port`, or per protocol `http=h:p;https=h:p`;
    /// empty when none is enabled.
    pub server: String,
    /// `ProxyOverride`: `;`-separated host patterns with `*`, and `<local>`.
    pub bypass: String,
}

/// Decides the route of a request to the collector at `endpoint`, reading variables through
/// `env` and the Windows settings through `system` (called only when no variable names a
/// proxy).
///
/// The rules are written in full, for users, in docs/abi.md, "Networks": that text is their
/// statement, and a change here changes it too. In order, as this function applies them:
/// 1. a loopback endpoint goes direct, always;
/// 2. else the first set, non-empty variable of `https_proxy`, `HTTPS_PROXY`, `all_proxy`,
///    `ALL_PROXY` names the proxy ([`ProxyUrl::parse`]; another scheme than `http`/`https` makes
///    the route [`Route::Unusable`]);
/// 3. with such a variable, `no_proxy`, else `NO_PROXY`, as curl reads it, sends the hosts it
///    names direct;
/// 4. else, on Windows, the current user's settings (`system_proxy::current`): automatic
///    detection or a PAC script URL makes the route [`Route::Automatic`], evaluated on the
///    first request ([`resolve_automatic`], [`pac_proxy`]), with the static proxy and its
///    bypass list as the fallback; without them, the static proxy and bypass list;
/// 5. else direct.
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
    let Some(system) = system() else {
        return Route::Direct(DirectReason::NoProxyConfigured);
    };
    let fallback = static_system_route(&system, host);
    let pac_url = system.pac_url.filter(|u| !u.trim().is_empty());
    if system.auto_detect || pac_url.is_some() {
        return Route::Automatic(Automatic {
            auto_detect: system.auto_detect,
            pac_url,
            fallback: Box::new(fallback),
        });
    }
    fallback
}

/// The static part of the Windows settings: bypass list, then the proxy, else direct.
fn static_system_route(system: &SystemProxy, host: &str) -> Route {
    if let Some(server) = system_server(&system.server) {
        if let Some(entry) = system_bypass_match(&system.bypass, host) {
            return Route::Direct(DirectReason::SystemBypass(entry));
        }
        return match ProxyUrl::parse(&server) {
            Ok(url) => Route::Proxy(url, ProxySource::System),
            Err(why) => Route::Unusable(format!(
                "the proxy of the Windows settings cannot be used: {why}"
            )),
        };
    }
    Route::Direct(DirectReason::NoProxyConfigured)
}

/// Why one part of the automatic configuration gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoError {
    /// Automatic detection found no PAC script (the common case on a network without WPAD).
    #[cfg_attr(not(windows), allow(dead_code))] // WinHTTP's answer: made on Windows only
    NoScript,
    /// The script could not be fetched or run, or WinHTTP failed; the sentence says which.
    Failed(String),
}

/// An evaluated [`Route::Automatic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub route: Route,
    /// Set when the automatic configuration gave no usable answer and the static settings
    /// were taken instead: why, for a warning.
    pub failure: Option<String>,
}

/// Evaluates `auto` in Windows' order: automatic detection, then the PAC URL, then the static
/// settings. `evaluate` asks WinHTTP about one source and answers `Ok(None)` for no proxy
/// (`DIRECT`), `Ok(Some(list))` for WinHTTP's proxy list.
pub fn resolve_automatic(
    auto: &Automatic,
    evaluate: &mut dyn FnMut(&AutoSource) -> Result<Option<String>, AutoError>,
) -> Resolved {
    let mut sources = Vec::new();
    if auto.auto_detect {
        sources.push(AutoSource::Detected);
    }
    if let Some(url) = &auto.pac_url {
        sources.push(AutoSource::Url(url.clone()));
    }
    let mut failures = Vec::new();
    for source in sources {
        let answer = evaluate(&source).and_then(|answer| match answer {
            None => Ok(Route::Direct(DirectReason::PacDirect(source.clone()))),
            Some(list) => match pac_proxy(&list) {
                Ok(Some(url)) => Ok(Route::Proxy(url, ProxySource::Automatic(source.clone()))),
                Ok(None) => Ok(Route::Direct(DirectReason::PacDirect(source.clone()))),
                Err(why) => Err(AutoError::Failed(why)),
            },
        });
        match answer {
            Ok(route) => {
                return Resolved {
                    route,
                    failure: None,
                }
            }
            // No WPAD script on this network: nothing failed, nothing to warn about.
            Err(AutoError::NoScript) => {}
            Err(AutoError::Failed(why)) => failures.push(format!("{source}: {why}")),
        }
    }
    Resolved {
        route: (*auto.fallback).clone(),
        failure: (!failures.is_empty()).then(|| failures.join("; ")),
    }
}

/// The proxy to take from WinHTTP's answer to a PAC evaluation: a list such as
/// `proxy1:8080; proxy2:8080`, whose entries may name protocols (`https=h:p`, `http=h:p`) or
/// keep the script's own words (`PROXY h:p`, `HTTPS h:p`, `DIRECT`). The first entry usable
/// for an HTTPS request wins: no protocol or `https=`, an HTTP(S) proxy (not SOCKS); a
/// `DIRECT` before it means direct (`Ok(None)`), as does an empty list. An entry without a
/// port gets 80, WinHTTP's default. `Err` when no entry is usable.
pub fn pac_proxy(list: &str) -> Result<Option<ProxyUrl>, String> {
    let entries: Vec<&str> = list
        .split([';', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    for entry in &entries {
        let (keyword, rest) = match entry.split_once(char::is_whitespace) {
            Some((k, rest)) => (k.to_ascii_uppercase(), rest.trim()),
            None => (String::new(), *entry),
        };
        let address = match keyword.as_str() {
            "" if rest.eq_ignore_ascii_case("DIRECT") => return Ok(None),
            "" => match rest.split_once('=') {
                Some((proto, addr)) if proto.trim().eq_ignore_ascii_case("https") => {
                    addr.trim().to_owned()
                }
                Some(_) => continue,
                None => rest.to_owned(),
            },
            "PROXY" | "HTTP" => rest.to_owned(),
            "HTTPS" if !rest.contains("://") => format!("https://{rest}"),
            _ => continue,
        };
        if address.is_empty() {
            continue;
        }
        let has_port = {
            let authority = address
                .split_once("://")
                .map_or(address.as_str(), |(_, r)| r);
            let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            matches!(split_host_port(hostport), Some((_, Some(_))))
        };
        if let Ok(mut url) = ProxyUrl::parse(&address) {
            if !has_port {
                url.port = 80;
            }
            return Ok(Some(url));
        }
    }
    Err(format!(
        "its answer {:?} names no proxy usable for HTTPS",
        crate::status::excerpt(list)
    ))
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
            ..SystemProxy::default()
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
            ..SystemProxy::default()
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

    #[test]
    fn automatic_configuration_waits_for_the_first_request() {
        let system = SystemProxy {
            auto_detect: true,
            pac_url: Some("http://wpad.corp/proxy.pac".into()),
            server: "sys:8080".into(),
            bypass: "<local>".into(),
        };
        let Route::Automatic(auto) = route_with(&[], Some(system.clone())) else {
            panic!("not automatic");
        };
        assert!(auto.auto_detect);
        assert_eq!(auto.pac_url.as_deref(), Some("http://wpad.corp/proxy.pac"));
        assert_eq!(
            proxied(&auto.fallback),
            Some(("http://sys:8080".into(), ProxySource::System))
        );
        // The variables still come first, and loopback is never proxied.
        assert!(matches!(
            route_with(&[("HTTPS_PROXY", "env:1")], Some(system.clone())),
            Route::Proxy(_, ProxySource::Env("HTTPS_PROXY"))
        ));
        let loopback = Endpoint::parse("https://127.0.0.1:4/").unwrap();
        assert_eq!(
            route(&loopback, &|_| None, &|| Some(system.clone())),
            Route::Direct(DirectReason::Loopback)
        );
        // A blank script URL and no detection: the static settings alone.
        let blank = SystemProxy {
            auto_detect: false,
            pac_url: Some(" ".into()),
            ..system
        };
        assert!(matches!(
            route_with(&[], Some(blank)),
            Route::Proxy(_, ProxySource::System)
        ));
    }

    #[test]
    fn pac_answers_as_winhttp_gives_them() {
        let first = |list: &str| pac_proxy(list).map(|u| u.map(|u| u.without_credentials()));
        assert_eq!(
            first("10.0.0.1:8080"),
            Ok(Some("http://10.0.0.1:8080".into()))
        );
        assert_eq!(
            first("p1.corp:3128; p2.corp:3128"),
            Ok(Some("http://p1.corp:3128".into()))
        );
        assert_eq!(
            first("http=h:1;https=s:2"),
            Ok(Some("http://s:2".into())),
            "the https= entry, for an HTTPS request"
        );
        assert_eq!(
            first("PROXY p:8080; DIRECT"),
            Ok(Some("http://p:8080".into()))
        );
        assert_eq!(first("HTTPS p:8443"), Ok(Some("https://p:8443".into())));
        assert_eq!(
            first("SOCKS s:1080; PROXY p:1"),
            Ok(Some("http://p:1".into()))
        );
        assert_eq!(first("socks=s:1080;p:1"), Ok(Some("http://p:1".into())));
        assert_eq!(
            first("p.corp"),
            Ok(Some("http://p.corp:80".into())),
            "WinHTTP's default port"
        );
        assert_eq!(
            first("[fd00::1]:8080"),
            Ok(Some("http://[fd00::1]:8080".into()))
        );
        assert_eq!(first("DIRECT"), Ok(None));
        assert_eq!(first("DIRECT; PROXY p:1"), Ok(None));
        assert_eq!(first(""), Ok(None));
        assert_eq!(first(" ; "), Ok(None));
        assert!(first("SOCKS5 s:1080").is_err());
        assert!(first("http=h:1").is_err());
    }

    #[test]
    fn automatic_sources_in_windows_order_then_the_static_settings() {
        let auto = Automatic {
            auto_detect: true,
            pac_url: Some("http://cfg/p.pac".into()),
            fallback: Box::new(Route::Proxy(
                ProxyUrl::parse("sys:1").unwrap(),
                ProxySource::System,
            )),
        };
        let url_source = AutoSource::Url("http://cfg/p.pac".into());
        let run = |answers: &dyn Fn(&AutoSource) -> Result<Option<String>, AutoError>| {
            let mut asked = Vec::new();
            let resolved = resolve_automatic(&auto, &mut |source| {
                asked.push(source.clone());
                answers(source)
            });
            (resolved, asked)
        };

        // Detection answers: the script URL is not asked.
        let (r, asked) = run(&|_| Ok(Some("det:1".into())));
        assert_eq!(asked, [AutoSource::Detected]);
        assert_eq!(
            proxied(&r.route),
            Some((
                "http://det:1".into(),
                ProxySource::Automatic(AutoSource::Detected)
            ))
        );
        assert_eq!(r.failure, None);

        // No WPAD script: the PAC URL decides, and nothing is reported as failed.
        let (r, asked) = run(&|s| match s {
            AutoSource::Detected => Err(AutoError::NoScript),
            AutoSource::Url(_) => Ok(None),
        });
        assert_eq!(asked, [AutoSource::Detected, url_source.clone()]);
        assert_eq!(
            r.route,
            Route::Direct(DirectReason::PacDirect(url_source.clone()))
        );
        assert_eq!(r.failure, None);
        assert!(
            r.route.to_string().contains("answered DIRECT"),
            "{}",
            r.route
        );

        // Both fail: the static proxy, and the reason.
        let (r, _) = run(&|s| match s {
            AutoSource::Detected => Err(AutoError::NoScript),
            AutoSource::Url(_) => Err(AutoError::Failed("it could not be downloaded".into())),
        });
        assert_eq!(r.route, *auto.fallback);
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("http://cfg/p.pac") && failure.contains("could not be downloaded"),
            "{failure}"
        );

        // A script answer with nothing usable counts as a failure of that source.
        let (r, _) = run(&|_| Ok(Some("SOCKS s:1".into())));
        assert_eq!(r.route, *auto.fallback);
        assert!(r.failure.unwrap().contains("no proxy usable"));

        // Detection alone, finding nothing: the static settings, no failure.
        let only_detect = Automatic {
            pac_url: None,
            ..auto.clone()
        };
        let r = resolve_automatic(&only_detect, &mut |_| Err(AutoError::NoScript));
        assert_eq!((r.route, r.failure), (*auto.fallback.clone(), None));
    }
}
