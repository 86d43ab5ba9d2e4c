//! The request body: NDJSON (one envelope per line) and its `Content-Encoding`.

use crate::model::config::Compression;
use std::io::Write;

/// The NDJSON body of a batch: one envelope per line, `\n` between lines.
pub fn ndjson<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, line) in lines.enumerate() {
        if i > 0 {
            body.push(b'\n');
        }
        body.extend_from_slice(line.as_bytes());
    }
    body
}

/// Compresses a body as `Content-Encoding` asks (`deflate` is raw RFC 1951, no zlib wrapper).
pub fn encode(body: &[u8], compression: Compression) -> (Vec<u8>, Option<&'static str>) {
    let level = flate2::Compression::fast();
    match compression {
        Compression::None => (body.to_vec(), None),
        Compression::Deflate => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::with_capacity(body.len() / 4), level);
            let _ = e.write_all(body);
            (e.finish().unwrap_or_default(), Some("deflate"))
        }
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
            let _ = e.write_all(body);
            (e.finish().unwrap_or_default(), Some("gzip"))
        }
    }
}
