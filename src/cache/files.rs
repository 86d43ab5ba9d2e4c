//! The files beside a cache file: its lock, the kill window, the folder; and how its claim
//! files are named.

use crate::sys::private_file;
use std::path::{Path, PathBuf};

/// Files beside a cache file.
#[derive(Debug, Clone)]
pub struct CacheFiles {
    pub cache: PathBuf,
    pub lock: PathBuf,
    pub kill: PathBuf,
    pub dir: PathBuf,
}

impl CacheFiles {
    pub fn new(cache: PathBuf) -> Self {
        let sibling = |suffix: &str| {
            let mut s = cache.clone().into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        CacheFiles {
            lock: sibling(".lock"),
            kill: sibling(".kill"),
            dir: private_file::folder_of(&cache),
            cache,
        }
    }

    /// Where `config` keeps its cache file, kill state, device id and consent record (None:
    /// nowhere, `cache_path: null` or no cache folder on this system).
    pub fn of(config: &crate::model::config::Config) -> Option<Self> {
        use crate::model::config::CachePath;
        match &config.cache_path {
            CachePath::Disabled => None,
            CachePath::File(p) => Some(CacheFiles::new(p.clone())),
            CachePath::Default => crate::sys::platform::default_cache_dir()
                .map(|d| CacheFiles::new(d.join(format!("{}.cache", config.ikey.tenant())))),
        }
    }

    /// The file name of `path`, as text.
    pub(crate) fn file_name(path: &Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn claim_prefix(&self) -> String {
        format!("{}.claim-", Self::file_name(&self.cache))
    }
}
