//! `ext.device.localId`: `r:<uuid4>`, created once and kept in the cache folder so that the same
//! machine keeps its id across processes (a bare hash without a scope prefix is refused by the
//! collector with "InvalidDeviceLocalId").

use crate::sys::log::{tel_log, Level};
use crate::sys::private_file::{self, Existing};
use std::io::Read;
use std::path::Path;

pub(crate) const FILE_NAME: &str = "device-id";

fn read_id(path: &Path) -> Option<String> {
    let mut f = private_file::open_read(path).ok()??;
    let mut s = String::new();
    Read::by_ref(&mut f).take(256).read_to_string(&mut s).ok()?;
    let id = s.trim();
    (id.starts_with("r:") && crate::sys::random::is_uuid_like(&id[2..])).then(|| id.to_owned())
}

/// The persisted id in `dir`, created if missing. Without a usable folder the id lives for
/// this session only.
pub fn local_id(dir: Option<&Path>) -> String {
    let Some(dir) = dir else {
        return format!("r:{}", crate::sys::random::uuid4());
    };
    let path = dir.join(FILE_NAME);
    if let Some(id) = read_id(&path) {
        return id;
    }
    let id = format!("r:{}", crate::sys::random::uuid4());
    // A hard link never replaces: when two processes race, the first id wins and both use it.
    let written = private_file::write(&path, Existing::Keep, |out| out.write_all(id.as_bytes()));
    match written {
        Ok(()) => read_id(&path).unwrap_or(id),
        Err(e) => {
            tel_log!(
                Level::Debug,
                "device id not persisted in {}: {e}",
                dir.display()
            );
            id
        }
    }
}

/// The id already in `dir`, if any (nothing is written: consent may still be unknown).
pub fn existing(dir: &Path) -> Option<String> {
    read_id(&dir.join(FILE_NAME))
}

/// Writes `id` in `dir` unless an id is there already (consent granted: abi.md 1.2). The
/// session goes on with its own id either way.
pub fn write(dir: &Path, id: &str) {
    let path = dir.join(FILE_NAME);
    if let Err(e) = private_file::write(&path, Existing::Keep, |out| out.write_all(id.as_bytes())) {
        tel_log!(
            Level::Debug,
            "device id not persisted in {}: {e}",
            dir.display()
        );
    }
}

/// Deletes the id in `dir` (consent denied: abi.md 1.2); a later grant makes a new one.
pub fn delete(dir: &Path) {
    match std::fs::remove_file(dir.join(FILE_NAME)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => tel_log!(
            Level::Warn,
            "the device id in {} could not be deleted: {e}",
            dir.display()
        ),
        _ => {}
    }
}
