//! `ext.device.localId`: `r:<uuid4>`, created once and kept in the cache folder so that the same
//! machine keeps its id across processes (a bare hash without a scope prefix is refused by the
//! collector with "InvalidDeviceLocalId").

use crate::logging::{tel_log, Level};
use crate::platform;
use std::io::{Read, Write};
use std::path::Path;

const FILE_NAME: &str = "device-id";

fn read_id(path: &Path) -> Option<String> {
    let mut f = platform::private_open_options()
        .read(true)
        .open(path)
        .ok()?;
    let mut s = String::new();
    Read::by_ref(&mut f).take(256).read_to_string(&mut s).ok()?;
    let id = s.trim();
    (id.starts_with("r:") && crate::random::is_uuid_like(&id[2..])).then(|| id.to_owned())
}

/// The persisted id in `dir`, created if missing. Without a usable folder the id lives for
/// this session only.
pub fn local_id(dir: Option<&Path>) -> String {
    let Some(dir) = dir else {
        return format!("r:{}", crate::random::uuid4());
    };
    let path = dir.join(FILE_NAME);
    if let Some(id) = read_id(&path) {
        return id;
    }
    let id = format!("r:{}", crate::random::uuid4());
    let written = (|| -> std::io::Result<()> {
        platform::create_private_dir(dir)?;
        let tmp = dir.join(format!("{FILE_NAME}.{}.tmp", crate::random::u64()));
        let mut f = platform::private_open_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        drop(f);
        // A hard link never replaces: when two processes race, the first id wins and both use it.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
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
