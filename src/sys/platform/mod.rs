//! What differs between operating systems, each behind one function: the per-user cache
//! folder, the OS name and version for `ext.os`, private files and folders, atomic replace.

use std::path::PathBuf;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub use imp::{
    create_private_dir, make_blocking, os_name, os_version, private_open_options, process_alive,
    replace_file,
};

/// The folder that holds cache files when `cache_path` is not given: `TEL_CACHE_DIR` if set,
/// else the platform's per-user cache folder + `tel`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TEL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    imp::user_cache_dir().map(|d| d.join("tel"))
}
