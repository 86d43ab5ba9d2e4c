//! The collector URL, parsed once into its parts. Everything that needs the scheme, the host,
//! the port or the path (the proxy decision, the request line, the `Host` header, the loopback
//! rule) reads them from here instead of re-splitting the string.
//!
//! The rule it enforces: an endpoint either works or is refused by `tel_init`. So the scheme is
//! matched without regard to case but written back in lower case, an IPv6 literal keeps its
//! brackets apart from its port, and anything a request could not honour (a fragment, user
//! credentials, characters no host name holds) is refused with a message that says why.

use crate::model::status::{excerpt, Error, Result};
use std::net::IpAddr;

/// `http` (loopback only) or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A validated collector URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL in canonical form: lower-case scheme, the authority as given, a path that starts
    /// with `/`. This is what is requested.
    pub url: String,
    pub scheme: Scheme,
    /// The host without the brackets of an IPv6 literal.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
    /// 127.0.0.0/8, `::1` or `localhost`: the only hosts plain `http://` may reach.
    pub loopback: bool,
}

impl Endpoint {
    /// `https://` anywhere; `http://` only to a loopback host, so that events and the key never
    /// cross a network in clear text.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::config(format!("endpoint {:?} {why}", excerpt(url)));
        if url.is_empty() {
            return Err(Error::config("endpoint is empty"));
        }
        if url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(Error::config(
                "endpoint contains whitespace or control characters",
            ));
        }
        if !url.is_ascii() {
            return Err(bad(
                "holds non-ASCII characters: percent-encode the path and use the host's ASCII (punycode) form",
            ));
        }
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(url, "https://") {
            (Scheme::Https, r)
        } else if let Some(r) = strip_prefix_ci(url, "http://") {
            (Scheme::Http, r)
        } else {
            return Err(bad(
                "must start with https:// (or http:// for a loopback host)",
            ));
        };
        // A fragment is never sent, and a '#' inside what looks like the host would make the
        // loopback check and the connection disagree about where the request goes.
        if rest.contains('#') {
            return Err(bad("must not hold a '#' (a URL fragment is never sent)"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(Error::config("endpoint must not carry user credentials"));
        }
        let (host, port_text, ipv6) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((inside, after)) = v6.split_once(']') else {
                return Err(bad("has a malformed host"));
            };
            if inside.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("has a malformed IPv6 address"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("has a malformed host"))?,
                ),
            };
            (inside, port, true)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p), false),
                None => (authority, None, false),
            }
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if !ipv6
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(bad(
                "has a host with characters no host name holds (letters, digits, '.', '-' and '_' only)",
            ));
        }
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("has an invalid port")),
            },
        };
        let loopback = is_loopback_host(host);
        if scheme == Scheme::Http && !loopback {
            return Err(bad(
                "is refused: http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://",
            ));
        }
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Endpoint {
            url: format!("{}://{authority}{path}", scheme.as_str()),
            scheme,
            host: host.to_owned(),
            port,
            path,
            loopback,
        })
    }

    /// Whether the host is an IPv6 address literal (written in brackets in a URL).
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// `host:port` as the `Host` header and a socket address want it (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.is_ipv6() {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// 127.0.0.0/8, `::1` or `localhost` (any case).
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_parts() {
        let e = Endpoint::parse("HTTP://127.0.0.1:8080/OneCollector/1.0/?x=1").unwrap();
        assert_eq!(e.scheme, Scheme::Http);
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 8080, "/OneCollector/1.0/?x=1")
        );
        assert_eq!(e.url, "http://127.0.0.1:8080/OneCollector/1.0/?x=1");
        assert!(e.loopback);

        let e = Endpoint::parse("Http://[::1]:9/x").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9));
        assert_eq!(e.authority(), "[::1]:9");
        assert_eq!(e.url, "http://[::1]:9/x");

        let e = Endpoint::parse("https://example.com").unwrap();
        assert_eq!((e.port, e.path.as_str()), (443, "/"));
        assert_eq!(e.url, "https://example.com/");
        assert!(!e.loopback);

        let e = Endpoint::parse("http://localhost?q").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/?q"));
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080/OneCollector/1.0/",
            "http://127.5.0.1/",
            "http://localhost:1/",
            "http://LOCALHOST:1/",
            "http://[::1]:9/x",
            "http://[::1]/x",
            "https://example.com/",
            "HTTPS://example.com/",
            "https://[2001:db8::1]/",
            "https://[::1]:8443/x",
        ] {
            Endpoint::parse(ok).unwrap();
        }
        for bad in [
            "http://10.0.0.1/",
            "http://[::2]/",
            "https:///",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:/",
            "http://127.0.0.1:+80/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1#.example.com/",
            "http://127.0.0.1/#frag",
            "http://127.0.0.1%2eexample.com/",
            "http://user@127.0.0.1/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[zz]/",
            "http://localhost.example.com/",
            "http://127.0.0.1.example.com/",
            "http://héllo/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
