use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME`, else `~/.cache` (Linux and other Unix); `~/Library/Caches` on macOS.
pub fn user_cache_dir() -> Option<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "macos") {
        return home().map(|h| h.join("Library").join("Caches"));
    }
    match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(d) if Path::new(&d).is_absolute() => Some(PathBuf::from(d)),
        _ => home().map(|h| h.join(".cache")),
    }
}

/// Creates the folder (and missing parents) readable by the owner alone (0700).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Files are created 0600, never opened through a symbolic link, and opened without blocking
/// (a FIFO planted in place of a file would otherwise block `open` until a writer comes); see
/// `private_file::open`, which then refuses anything but a regular file.
pub fn private_open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    o
}

/// Clears `O_NONBLOCK` once the file is known to be a regular file.
pub fn make_blocking(f: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this File owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0
        && unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a process with this id may still be running (a recycled id counts as running).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Atomically replaces `dest` with `tmp` (same folder).
pub fn replace_file(tmp: &Path, dest: &Path) -> io::Result<()> {
    std::fs::rename(tmp, dest)
}

pub fn os_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS"
    } else if cfg!(target_os = "linux") {
        "Linux"
    } else if cfg!(target_os = "freebsd") {
        "FreeBSD"
    } else {
        "Unix"
    }
}

#[cfg(target_os = "macos")]
pub fn os_version() -> String {
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    let name = b"kern.osproductversion\0";
    // SAFETY: name is NUL-terminated, buf/len describe a writable buffer.
    let rc = unsafe {
        libc::sysctlbyname(
            name.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 && len > 0 {
        let s = &buf[..len.min(buf.len())];
        let s = s.split(|b| *b == 0).next().unwrap_or(s);
        return String::from_utf8_lossy(s).into_owned();
    }
    uname_release()
}

#[cfg(not(target_os = "macos"))]
pub fn os_version() -> String {
    uname_release()
}

fn uname_release() -> String {
    // SAFETY: utsname is plain old data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::from("unknown");
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
