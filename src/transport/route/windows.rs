//! The Windows proxy settings as the route reads them: the static proxy (`ProxyServer`) and its
//! bypass list (`ProxyOverride`), and the answers of the automatic configuration, evaluated
//! on the first request.

use super::{split_host_port, Automatic, DirectReason, ProxySource, ProxyUrl, Route};
use crate::transport::system_proxy::{AutoError, AutoSource};
use std::net::IpAddr;

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
        crate::model::status::excerpt(list)
    ))
}

/// The server of a `ProxyServer` value for HTTPS requests.
pub(super) fn system_server(server: &str) -> Option<String> {
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
pub(super) fn system_bypass_match(list: &str, host: &str) -> Option<String> {
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
        let Route::Proxy(url, source) = &r.route else {
            panic!("not proxied: {}", r.route);
        };
        assert_eq!(url.without_credentials(), "http://det:1");
        assert_eq!(source, &ProxySource::Automatic(AutoSource::Detected));
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
