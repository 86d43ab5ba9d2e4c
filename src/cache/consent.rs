//! The consent record (abi.md, "Consent"): `consent` in the cache folder, beside the device id,
//! a private file `{"state": "granted"|"denied", "version": N, "time_ms": T}`. One record per
//! cache folder: every tenant and process using the folder reads the same answer.

use crate::sys::log::{tel_log, Level};
use crate::sys::private_file::{self, Existing};
use std::io::{self, Read};
use std::path::Path;

pub(crate) const FILE_NAME: &str = "consent";

/// A recorded answer: granted (true) or denied (false), and the notice's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub granted: bool,
    pub version: u64,
}

/// The record in `dir`; None when there is none or it cannot be read or understood.
pub fn read(dir: &Path) -> Option<Record> {
    let mut f = private_file::open_read(&dir.join(FILE_NAME)).ok()??;
    let mut text = String::new();
    Read::by_ref(&mut f)
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let granted = match value.get("state")?.as_str()? {
        "granted" => true,
        "denied" => false,
        _ => return None,
    };
    let version = value.get("version")?.as_u64()?;
    Some(Record { granted, version })
}

/// Writes (replaces) the record in `dir`.
pub fn write(dir: &Path, record: Record, time_ms: u64) -> io::Result<()> {
    let state = if record.granted { "granted" } else { "denied" };
    let text = format!(
        "{{\"state\":\"{state}\",\"version\":{},\"time_ms\":{time_ms}}}\n",
        record.version
    );
    let result = private_file::write(&dir.join(FILE_NAME), Existing::Replace, |out| {
        out.write_all(text.as_bytes())
    });
    if let Err(e) = &result {
        tel_log!(
            Level::Warn,
            "the consent record could not be written in {}: {e}; the answer holds for this session only",
            dir.display()
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_garbage_is_none() {
        let dir = std::env::temp_dir().join(format!("tel-consent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(read(&dir), None);
        let r = Record {
            granted: false,
            version: 7,
        };
        write(&dir, r, 1).unwrap();
        assert_eq!(read(&dir), Some(r));
        std::fs::write(dir.join(FILE_NAME), "{\"state\":\"maybe\",\"version\":1}").unwrap();
        assert_eq!(read(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
