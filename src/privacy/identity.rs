//! Who the user is, as the `user_path` detector needs it: the home folder and the login name,
//! read from the environment once, when a scrubber is built (abi.md, "Scrubbing").

/// The home folder and login name that `user_path` replaces, in the form it compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserIdentity {
    /// The home folder without trailing separators; on Windows with `\` separators and ASCII
    /// letters in lower case. None when unset, relative, or the filesystem root.
    pub(crate) home: Option<String>,
    /// The login name (lower case on Windows); None when unknown, or when it could not be a
    /// path segment (it holds a separator).
    pub(crate) login: Option<String>,
    /// Windows rules: case-insensitive, `/` and `\` alike in the home folder.
    pub(crate) windows: bool,
}

impl UserIdentity {
    /// The current user's: `HOME` and `USER`, else `LOGNAME`, else the account name of the
    /// effective user id; on Windows `USERPROFILE` and `USERNAME`, else `GetUserNameW`.
    /// Variables that are empty or not UTF-8 count as unset.
    pub fn from_environment() -> UserIdentity {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if cfg!(windows) {
            let login = var("USERNAME").or_else(os_account_name);
            UserIdentity::new(var("USERPROFILE").as_deref(), login.as_deref(), true)
        } else {
            let login = var("USER")
                .or_else(|| var("LOGNAME"))
                .or_else(os_account_name);
            UserIdentity::new(var("HOME").as_deref(), login.as_deref(), false)
        }
    }

    /// An identity from given values (tests, and [`UserIdentity::from_environment`]), under the
    /// rules of Unix or of Windows.
    pub fn new(home: Option<&str>, login: Option<&str>, windows: bool) -> UserIdentity {
        UserIdentity {
            home: home.and_then(|h| normalize_home(h, windows)),
            login: login
                .filter(|l| !l.is_empty() && !l.contains(['/', '\\']))
                .map(|l| {
                    if windows {
                        l.to_ascii_lowercase()
                    } else {
                        l.to_owned()
                    }
                }),
            windows,
        }
    }
}

/// The home folder as `user_path` compares it, or None when it cannot be told apart from
/// other text: relative, or the root of a filesystem (`/`, `C:\`, `\\server\share`), which
/// begins every absolute path.
fn normalize_home(home: &str, windows: bool) -> Option<String> {
    if windows {
        let h = home.replace('/', "\\").to_ascii_lowercase();
        let h = h.trim_end_matches('\\');
        let b = h.as_bytes();
        let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
        let unc = h.starts_with("\\\\");
        let absolute = (drive && (b.len() == 2 || b[2] == b'\\')) || unc;
        let root = if drive {
            b.len() == 2
        } else {
            // `\\server` or `\\server\share`: the root of a network share.
            h[2.min(h.len())..]
                .split('\\')
                .filter(|s| !s.is_empty())
                .count()
                <= 2
        };
        (absolute && !root).then(|| h.to_owned())
    } else {
        let h = home.trim_end_matches('/');
        (home.starts_with('/') && !h.is_empty()).then(|| h.to_owned())
    }
}

/// The name the operating system gives the effective user, when the environment names none.
#[cfg(unix)]
fn os_account_name() -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain old data that getpwuid_r fills; buf and its length describe
        // writable memory that outlives the call, and `found` points into it only on success.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwuid_r(
                libc::geteuid(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name is a NUL-terminated string inside buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name
            .to_str()
            .ok()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
}

/// The name the operating system gives the user, when the environment names none.
#[cfg(windows)]
fn os_account_name() -> Option<String> {
    use windows_sys::Win32::System::WindowsProgramming::GetUserNameW;
    // UNLEN (256) + 1.
    let mut buf = [0u16; 257];
    let mut len = buf.len() as u32;
    // SAFETY: buf and len describe a writable buffer of len UTF-16 units.
    if unsafe { GetUserNameW(buf.as_mut_ptr(), &mut len) } == 0 || len == 0 {
        return None;
    }
    // len counts the terminating NUL.
    String::from_utf16(&buf[..len as usize - 1])
        .ok()
        .filter(|n| !n.is_empty())
}

#[cfg(not(any(unix, windows)))]
fn os_account_name() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_home_folders() {
        let home = |h| UserIdentity::new(Some(h), None, false).home;
        assert_eq!(home("/home/ann"), Some("/home/ann".into()));
        assert_eq!(home("/home/ann///"), Some("/home/ann".into()));
        assert_eq!(home("/"), None, "the root begins every path");
        assert_eq!(home("//"), None);
        assert_eq!(home("home/ann"), None, "relative");
        assert_eq!(home("."), None);
        assert_eq!(home(""), None);
    }

    #[test]
    fn windows_home_folders() {
        let home = |h| UserIdentity::new(Some(h), None, true).home;
        assert_eq!(home(r"C:\Users\Ann"), Some(r"c:\users\ann".into()));
        assert_eq!(home("C:/Users/Ann/"), Some(r"c:\users\ann".into()));
        assert_eq!(home(r"\\srv\share\ann"), Some(r"\\srv\share\ann".into()));
        for root in [r"C:\", "C:", "c:/", r"\\srv\share", r"\\srv", r"\\"] {
            assert_eq!(home(root), None, "{root}");
        }
        assert_eq!(home(r"Users\Ann"), None, "relative");
        assert_eq!(
            home(r"C:Users"),
            None,
            "relative to a drive's current folder"
        );
    }

    #[test]
    fn login_names() {
        let login = |l, w| UserIdentity::new(None, Some(l), w).login;
        assert_eq!(login("ann", false), Some("ann".into()));
        assert_eq!(login("Ann", false), Some("Ann".into()));
        assert_eq!(login("Ann", true), Some("ann".into()));
        assert_eq!(login("", false), None);
        assert_eq!(login(r"DOMAIN\ann", true), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_os_names_the_effective_user_as_id_does() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let expected = String::from_utf8(id.stdout).unwrap().trim().to_owned();
        // `id -un` fails for a user id without an account; then there is no name either.
        let expected = (id.status.success() && !expected.is_empty()).then_some(expected);
        assert_eq!(os_account_name(), expected);
    }
}
