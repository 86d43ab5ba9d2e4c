//! The current user's proxy settings on Windows, read when no proxy variable is set, and the
//! evaluation of their automatic part by WinHTTP. Elsewhere there are none.
//!
//! The settings come from two places, because Windows keeps them in both and not every
//! implementation reads both:
//!
//! - `WinHttpGetIEProxyConfigForCurrentUser`, what Windows clients call: "Automatically detect
//!   settings", the setup script's URL, the static proxy and its bypass list (Windows keeps
//!   them in the `DefaultConnectionSettings` value under `Internet Settings\Connections`);
//! - the values of `HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings`:
//!   `ProxyEnable`, `ProxyServer`, `ProxyOverride` and `AutoConfigURL`, which group policies
//!   and scripts write. (Wine's WinHTTP reads only the `DefaultConnectionSettings` value, and
//!   when there is none reports automatic detection on and nothing else.)
//!
//! The first place wins where both say something; automatic detection comes from the first
//! alone.

use std::fmt;

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

/// The Windows proxy settings of the current user, as the route reads them.
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

/// Why one part of the automatic configuration gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoError {
    /// Automatic detection found no PAC script (the common case on a network without WPAD).
    #[cfg_attr(not(windows), allow(dead_code))] // WinHTTP's answer: made on Windows only
    NoScript,
    /// The script could not be fetched or run, or WinHTTP failed; the sentence says which.
    Failed(String),
}

/// The user's proxy settings; `None` when they name neither a proxy nor automatic
/// configuration.
#[cfg(windows)]
pub fn current() -> Option<SystemProxy> {
    let api = winhttp::ie_config().unwrap_or_default();
    let values = registry_values();
    let (server, bypass) = match api.proxy.filter(|p| !p.trim().is_empty()) {
        Some(proxy) => (proxy, api.bypass.unwrap_or_default()),
        None if values.enabled => (values.server, values.bypass),
        None => (String::new(), String::new()),
    };
    let pac_url = api
        .auto_config_url
        .filter(|u| !u.trim().is_empty())
        .or(values.auto_config_url.filter(|u| !u.trim().is_empty()));
    let settings = SystemProxy {
        auto_detect: api.auto_detect,
        pac_url,
        server,
        bypass,
    };
    (settings.auto_detect || settings.pac_url.is_some() || !settings.server.trim().is_empty())
        .then_some(settings)
}

#[cfg(not(windows))]
pub fn current() -> Option<SystemProxy> {
    None
}

/// The `Internet Settings` values.
#[cfg(windows)]
#[derive(Default)]
struct RegistryValues {
    enabled: bool,
    server: String,
    bypass: String,
    auto_config_url: Option<String>,
}

#[cfg(windows)]
fn registry_values() -> RegistryValues {
    use winreg::enums::{HKEY_CURRENT_USER, KEY_READ};
    let Ok(settings) = winreg::RegKey::predef(HKEY_CURRENT_USER).open_subkey_with_flags(
        r"Software\Microsoft\Windows\CurrentVersion\Internet Settings",
        KEY_READ,
    ) else {
        return RegistryValues::default();
    };
    let text = |name: &str| settings.get_value::<String, _>(name).ok();
    RegistryValues {
        enabled: settings
            .get_value::<u32, _>("ProxyEnable")
            .is_ok_and(|v| v == 1),
        server: text("ProxyServer").unwrap_or_default(),
        bypass: text("ProxyOverride").unwrap_or_default(),
        auto_config_url: text("AutoConfigURL"),
    }
}

/// Asks WinHTTP which proxy `source` names for a request to `url`: `Ok(None)` for none
/// (`DIRECT`), `Ok(Some(list))` for its proxy list. Each of WinHTTP's timeouts (name
/// resolution, connection, sending, receiving) is `timeout_ms`.
#[cfg(windows)]
pub fn evaluate(
    source: &AutoSource,
    url: &str,
    timeout_ms: u64,
) -> Result<Option<String>, AutoError> {
    winhttp::proxy_for_url(source, url, timeout_ms)
}

#[cfg(not(windows))]
pub fn evaluate(
    _source: &AutoSource,
    _url: &str,
    _timeout_ms: u64,
) -> Result<Option<String>, AutoError> {
    Err(AutoError::Failed(
        "automatic proxy configuration is evaluated on Windows only".into(),
    ))
}

#[cfg(windows)]
mod winhttp {
    use super::{AutoError, AutoSource};
    use std::ptr;
    use windows_sys::Win32::Foundation::{GetLastError, GlobalFree};
    use windows_sys::Win32::Networking::WinHttp::{
        WinHttpCloseHandle, WinHttpGetIEProxyConfigForCurrentUser, WinHttpGetProxyForUrl,
        WinHttpOpen, WinHttpSetTimeouts, WINHTTP_ACCESS_TYPE_NO_PROXY,
        WINHTTP_AUTOPROXY_AUTO_DETECT, WINHTTP_AUTOPROXY_CONFIG_URL, WINHTTP_AUTOPROXY_OPTIONS,
        WINHTTP_AUTO_DETECT_TYPE_DHCP, WINHTTP_AUTO_DETECT_TYPE_DNS_A,
        WINHTTP_CURRENT_USER_IE_PROXY_CONFIG, WINHTTP_PROXY_INFO,
    };

    /// What `WinHttpGetIEProxyConfigForCurrentUser` reports.
    #[derive(Default)]
    pub(super) struct IeConfig {
        pub auto_detect: bool,
        pub auto_config_url: Option<String>,
        pub proxy: Option<String>,
        pub bypass: Option<String>,
    }

    pub(super) fn ie_config() -> Option<IeConfig> {
        let mut config = WINHTTP_CURRENT_USER_IE_PROXY_CONFIG::default();
        // SAFETY: `config` is a valid out-parameter; on success its strings are ours, taken
        // (and freed with GlobalFree) once each below.
        let ok = unsafe { WinHttpGetIEProxyConfigForCurrentUser(&mut config) } != 0;
        let result = IeConfig {
            auto_detect: config.fAutoDetect != 0,
            auto_config_url: unsafe { take(config.lpszAutoConfigUrl) },
            proxy: unsafe { take(config.lpszProxy) },
            bypass: unsafe { take(config.lpszProxyBypass) },
        };
        ok.then_some(result)
    }

    pub(super) fn proxy_for_url(
        source: &AutoSource,
        url: &str,
        timeout_ms: u64,
    ) -> Result<Option<String>, AutoError> {
        let agent = wide(&format!(
            "onecollector-tel/{}",
            crate::model::ext::SDK_VERSION
        ));
        // SAFETY: a NUL-terminated agent name and null proxy strings, as the call allows.
        let session = unsafe {
            WinHttpOpen(
                agent.as_ptr(),
                WINHTTP_ACCESS_TYPE_NO_PROXY,
                ptr::null(),
                ptr::null(),
                0,
            )
        };
        if session.is_null() {
            let code = unsafe { GetLastError() };
            return Err(AutoError::Failed(format!(
                "WinHTTP could not open a session (error {code})"
            )));
        }
        let timeout = i32::try_from(timeout_ms.max(1)).unwrap_or(i32::MAX);
        let pac_url = match source {
            AutoSource::Url(u) => Some(wide(u)),
            AutoSource::Detected => None,
        };
        let mut options = WINHTTP_AUTOPROXY_OPTIONS {
            fAutoLogonIfChallenged: 1,
            ..Default::default()
        };
        match &pac_url {
            Some(u) => {
                options.dwFlags = WINHTTP_AUTOPROXY_CONFIG_URL;
                options.lpszAutoConfigUrl = u.as_ptr();
            }
            None => {
                options.dwFlags = WINHTTP_AUTOPROXY_AUTO_DETECT;
                options.dwAutoDetectFlags =
                    WINHTTP_AUTO_DETECT_TYPE_DHCP | WINHTTP_AUTO_DETECT_TYPE_DNS_A;
            }
        }
        let url = wide(url);
        let mut info = WINHTTP_PROXY_INFO::default();
        // SAFETY: `session` is open until closed below; `url`, `options` and the strings it
        // points to outlive the call; `info` is a valid out-parameter whose strings are taken
        // (and freed) once each.
        let (ok, code) = unsafe {
            WinHttpSetTimeouts(session, timeout, timeout, timeout, timeout);
            let ok = WinHttpGetProxyForUrl(session, url.as_ptr(), &mut options, &mut info) != 0;
            let code = GetLastError();
            WinHttpCloseHandle(session);
            (ok, code)
        };
        let proxy = unsafe { take(info.lpszProxy) };
        let _bypass = unsafe { take(info.lpszProxyBypass) };
        if !ok {
            return Err(error(code));
        }
        if info.dwAccessType == WINHTTP_ACCESS_TYPE_NO_PROXY {
            return Ok(None);
        }
        Ok(Some(proxy.unwrap_or_default()))
    }

    /// WinHTTP's automatic-proxy errors in words (winhttp.h's numbers).
    fn error(code: u32) -> AutoError {
        let why = match code {
            12180 => return AutoError::NoScript, // ERROR_WINHTTP_AUTODETECTION_FAILED
            12167 => "the script could not be downloaded".to_owned(),
            12166 => "the script failed to run or returned nothing usable".to_owned(),
            12178 => "WinHTTP's automatic proxy service failed".to_owned(),
            12002 => "no answer in time".to_owned(),
            12006 => "the script's URL is not valid".to_owned(),
            other => format!("WinHTTP error {other}"),
        };
        AutoError::Failed(why)
    }

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// The text of a string WinHTTP allocated, which is then freed.
    ///
    /// # Safety
    /// `p` is null or a NUL-terminated UTF-16 string from GlobalAlloc, not used afterwards.
    unsafe fn take(p: *mut u16) -> Option<String> {
        if p.is_null() {
            return None;
        }
        let mut len = 0;
        while *p.add(len) != 0 {
            len += 1;
        }
        let text = String::from_utf16_lossy(std::slice::from_raw_parts(p, len));
        GlobalFree(p.cast());
        Some(text)
    }
}
