//! What the fuzz targets share: the contract they check, written once with the property tests
//! (`tests/common/fuzz/oracle.rs`), and a scratch folder for the targets that read files.

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../../tests/common/fuzz/oracle.rs"]
pub mod oracle;

/// `name` in a folder of this process's own, on tmpfs when there is one (a target writes its
/// input there before every run). The folder is made empty on first use.
pub fn scratch_file(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = ["/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("tel-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
    .join(name)
}
