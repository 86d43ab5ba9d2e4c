//! The order in which the settings decide the route: the endpoint, the variables, `NO_PROXY`,
//! the Windows settings.

use super::no_proxy::no_proxy_match;
use super::windows::{system_bypass_match, system_server};
use super::{Automatic, DirectReason, ProxySource, ProxyUrl, Route};
use crate::model::endpoint::{Endpoint, Scheme};
use crate::transport::system_proxy::{self, SystemProxy};

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
///    first request ([`resolve_automatic`](super::windows::resolve_automatic),
///    [`pac_proxy`](super::windows::pac_proxy)), with the static proxy and its
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

/// The route for this process's environment and, on Windows, its proxy settings.
pub fn route_from_system(endpoint: &Endpoint) -> Route {
    route(
        endpoint,
        &|name| std::env::var(name).ok(),
        &system_proxy::current,
    )
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
        // A proxy of another scheme is not gone around: requests fail, saying why.
        assert!(matches!(
            route_with(&[("HTTPS_PROXY", "socks5://p:1080")], None),
            Route::Unusable(_)
        ));
        // http_proxy is for http:// requests, and an empty variable is not set.
        assert_eq!(
            route_with(&[("http_proxy", "http://p:1"), ("HTTPS_PROXY", "")], None),
            Route::Direct(DirectReason::NoProxyConfigured)
        );
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
}
