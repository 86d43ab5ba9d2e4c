//! Windows: the cache folder is `%LOCALAPPDATA%`, files are opened so that other processes may
//! replace or delete them while they are open, a replace waits briefly for a process that has
//! the destination open, and `os.ver` is the real version. Paths reach Windows as UTF-16 through
//! std's wide-character calls, so any Unicode folder name works.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FILE_SHARE_READ: u32 = 0x1;
const FILE_SHARE_WRITE: u32 = 0x2;
const FILE_SHARE_DELETE: u32 = 0x4;
const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SHARING_VIOLATION: i32 = 32;
const ERROR_LOCK_VIOLATION: i32 = 33;

/// How long a replace waits for another process to close the destination. Short: the library's
/// own readers hold a file for microseconds, and the last write of `tel_shutdown` has a margin
/// of 150 ms (abi.md).
const REPLACE_PATIENCE: Duration = Duration::from_millis(100);

/// `%LOCALAPPDATA%`, else `%USERPROFILE%\AppData\Local` (a process started with a stripped
/// environment may lack the former). A relative value is ignored.
pub fn user_cache_dir() -> Option<PathBuf> {
    local_app_data(
        std::env::var_os("LOCALAPPDATA"),
        std::env::var_os("USERPROFILE"),
    )
}

fn local_app_data(local: Option<OsString>, profile: Option<OsString>) -> Option<PathBuf> {
    let absolute = |d: OsString| Some(PathBuf::from(d)).filter(|p| p.is_absolute());
    local.and_then(absolute).or_else(|| {
        profile
            .and_then(absolute)
            .map(|p| p.join("AppData").join("Local"))
    })
}

/// Folders take the ACL of their parent: under `%LOCALAPPDATA%` that is the user's own.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Every file is opened with all three sharing flags (std's default, stated here because the
/// cache protocol depends on it): without `FILE_SHARE_DELETE` on every open handle, another
/// process could neither rename a new cache file over this one nor delete it.
pub fn private_open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE);
    o
}

/// Nothing to undo: Windows files are not opened non-blocking.
pub fn make_blocking(_f: &std::fs::File) -> io::Result<()> {
    Ok(())
}

/// Not checked on Windows: a temporary file is taken as orphaned by its age alone.
pub fn process_alive(_pid: u32) -> bool {
    true
}

/// Atomically replaces `dest` with `tmp` (same folder). std's rename uses POSIX semantics where
/// the file system has them (Windows 10 1809+, NTFS), which replace a file that is open;
/// elsewhere (`MoveFileExW`, older systems, Wine, FAT) an open destination refuses with
/// access denied or a sharing violation until it is closed, so those errors are retried for
/// up to [`REPLACE_PATIENCE`].
pub fn replace_file(tmp: &Path, dest: &Path) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::rename(tmp, dest) {
            Err(e) if held_open(&e) && start.elapsed() < REPLACE_PATIENCE && !dest.is_dir() => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn held_open(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
    )
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

/// `major.minor.build` from `RtlGetVersion`: `GetVersionEx` answers what the program's manifest
/// declares support for (6.2 on every Windows since 8 for a program without one).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, TryLockError};
    use std::io::{Read, Write};

    /// A fresh folder under the temporary folder, named with non-ASCII characters so that
    /// every test also goes through UTF-16 paths.
    fn scratch(tag: &str) -> PathBuf {
        let seed = std::collections::hash_map::RandomState::new();
        let h = std::hash::BuildHasher::hash_one(&seed, (tag, std::process::id()));
        let dir = std::env::temp_dir().join(format!("tel-wïn-缓存-{tag}-{h:016x}"));
        create_private_dir(&dir).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        let mut f = private_open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn read(path: &Path) -> String {
        let mut s = String::new();
        private_open_options()
            .read(true)
            .open(path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn the_cache_folder_is_local_app_data() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            local_app_data(os(r"C:\Users\Zoë\AppData\Local"), os(r"C:\Users\Zoë")),
            Some(PathBuf::from(r"C:\Users\Zoë\AppData\Local"))
        );
        assert_eq!(
            local_app_data(None, os(r"C:\Users\Zoë")),
            Some(PathBuf::from(r"C:\Users\Zoë\AppData\Local"))
        );
        assert_eq!(
            local_app_data(os(""), os(r"D:\u")),
            Some(PathBuf::from(r"D:\u\AppData\Local"))
        );
        assert_eq!(local_app_data(os(r"relative\dir"), None), None);
        assert_eq!(local_app_data(None, None), None);
    }

    #[test]
    fn non_ascii_paths_round_trip() {
        let dir = scratch("names");
        let nested = dir.join("Ünïcødé 用户").join("tel");
        create_private_dir(&nested).unwrap();
        let file = nested.join("tenänt😀.cache");
        write(&file, "one");
        let tmp = nested.join("tenänt😀.cache.1.tmp");
        write(&tmp, "two");
        replace_file(&tmp, &file).unwrap();
        assert_eq!(read(&file), "two");
        let names: Vec<OsString> = fs::read_dir(&nested)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("tenänt😀.cache")]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_replace_waits_for_a_reader_to_close_the_destination() {
        let dir = scratch("replace");
        let dest = dir.join("f.cache.kill");
        write(&dest, "old");
        let reader = private_open_options().read(true).open(&dest).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(reader);
        });
        let tmp = dir.join("f.cache.kill.2.tmp");
        write(&tmp, "new");
        replace_file(&tmp, &dest).unwrap();
        closer.join().unwrap();
        assert_eq!(read(&dest), "new");
        assert!(!tmp.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_replace_gives_up_soon_on_a_destination_that_stays_locked() {
        let dir = scratch("locked");
        let dest = dir.join("f.cache");
        write(&dest, "old");
        // Another program's handle without FILE_SHARE_DELETE, held for longer than the patience.
        let holder = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(&dest)
            .unwrap();
        let tmp = dir.join("f.cache.3.tmp");
        write(&tmp, "new");
        let start = Instant::now();
        assert!(replace_file(&tmp, &dest).is_err());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        drop(holder);
        assert_eq!(read(&dest), "old");
        replace_file(&tmp, &dest).unwrap();
        assert_eq!(read(&dest), "new");

        let folder = dir.join("a folder");
        fs::create_dir(&folder).unwrap();
        write(&tmp, "x");
        let start = Instant::now();
        assert!(replace_file(&tmp, &folder).is_err());
        assert!(start.elapsed() < REPLACE_PATIENCE, "{:?}", start.elapsed());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_held_open_by_the_library_can_be_deleted() {
        let dir = scratch("delete");
        let path = dir.join("f.cache.claim-0");
        write(&path, "x");
        let held = private_open_options().read(true).open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        drop(held);
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lock_excludes_other_handles_until_released() {
        let dir = scratch("lock");
        let path = dir.join("f.cache.lock");
        let open = || {
            private_open_options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let first: File = open();
        first.try_lock().unwrap();
        let second = open();
        assert!(matches!(second.try_lock(), Err(TryLockError::WouldBlock)));
        // The result is not checked, as the cache does not check it: Wine answers std's second
        // UnlockFile (for a shared lock) with ERROR_LOCK_VIOLATION where Windows says
        // ERROR_NOT_LOCKED, though the lock is gone.
        let _ = first.unlock();
        second.try_lock().unwrap();
        assert!(matches!(first.try_lock(), Err(TryLockError::WouldBlock)));
        // Closing a handle releases its lock: how a dead session's claim is recognised.
        drop(second);
        first.try_lock().unwrap();
        drop(first);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_version_is_major_minor_build() {
        let v = os_version();
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{v}");
        assert!(parts[0] >= 6, "{v}");
        assert_eq!(os_name(), "Windows");
    }
}
