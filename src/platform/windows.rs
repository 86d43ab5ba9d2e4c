use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// `%LOCALAPPDATA%`.
pub fn user_cache_dir() -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Folders under `%LOCALAPPDATA%` inherit the user's private ACL; nothing more to set.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub fn private_open_options() -> OpenOptions {
    OpenOptions::new()
}

/// `MoveFileExW(MOVEFILE_REPLACE_EXISTING)` through std.
pub fn replace_file(tmp: &Path, dest: &Path) -> io::Result<()> {
    std::fs::rename(tmp, dest)
}

pub fn os_name() -> &'static str {
    "Windows"
}

#[repr(C)]
struct OsVersionInfoW {
    size: u32,
    major: u32,
    minor: u32,
    build: u32,
    platform: u32,
    csd: [u16; 128],
}

#[link(name = "ntdll")]
extern "system" {
    fn RtlGetVersion(info: *mut OsVersionInfoW) -> i32;
}

/// The real version from `RtlGetVersion` (GetVersionEx is shimmed to what the manifest claims).
pub fn os_version() -> String {
    let mut info = OsVersionInfoW {
        size: std::mem::size_of::<OsVersionInfoW>() as u32,
        major: 0,
        minor: 0,
        build: 0,
        platform: 0,
        csd: [0; 128],
    };
    // SAFETY: info is a correctly sized OSVERSIONINFOW with its size field set.
    if unsafe { RtlGetVersion(&mut info) } == 0 {
        format!("{}.{}.{}", info.major, info.minor, info.build)
    } else {
        String::from("unknown")
    }
}
