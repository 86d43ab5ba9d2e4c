//! The current user's proxy settings on Windows (`HKCU\Software\Microsoft\Windows\CurrentVersion\
//! Internet Settings`), read when no proxy variable is set. Elsewhere there are none.

use super::route::SystemProxy;

/// The static proxy of the Internet Settings when `ProxyEnable` is 1.
#[cfg(windows)]
pub fn current() -> Option<SystemProxy> {
    use winreg::enums::{HKEY_CURRENT_USER, KEY_READ};
    let settings = winreg::RegKey::predef(HKEY_CURRENT_USER)
        .open_subkey_with_flags(
            r"Software\Microsoft\Windows\CurrentVersion\Internet Settings",
            KEY_READ,
        )
        .ok()?;
    let enabled = settings
        .get_value::<u32, _>("ProxyEnable")
        .is_ok_and(|v| v == 1);
    if !enabled {
        return None;
    }
    Some(SystemProxy {
        server: settings.get_value::<String, _>("ProxyServer").ok()?,
        bypass: settings
            .get_value::<String, _>("ProxyOverride")
            .unwrap_or_default(),
    })
}

#[cfg(not(windows))]
pub fn current() -> Option<SystemProxy> {
    None
}
