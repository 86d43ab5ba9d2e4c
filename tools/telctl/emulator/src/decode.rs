//! Undoing `Content-Encoding`: raw RFC 1951 deflate, gzip, or nothing, with a bound on the
//! inflated size so that a small compressed body cannot exhaust the emulator.

use flate2::{Decompress, FlushDecompress, Status};
use std::io::Read;

/// Why a body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A `Content-Encoding` other than `deflate` or `gzip`.
    Unsupported(String),
    /// The body is not a valid stream of its encoding; the text says why.
    Corrupt(String),
    /// The decoded body is larger than the limit.
    TooLarge { limit: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Unsupported(encoding) => {
                write!(f, "Unsupported Content-Encoding: {encoding}")
            }
            DecodeError::Corrupt(why) => f.write_str(why),
            DecodeError::TooLarge { limit } => {
                write!(f, "Request body exceeds {limit} bytes once decompressed")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `raw` as sent with `Content-Encoding: encoding` (`None`: the header was absent),
/// refusing a result longer than `limit` bytes.
pub fn decode_body(
    encoding: Option<&str>,
    raw: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let decoded = match encoding.map(str::trim) {
        None => raw.to_vec(),
        Some(e) if e.eq_ignore_ascii_case("deflate") => inflate_raw(raw, limit)?,
        Some(e) if e.eq_ignore_ascii_case("gzip") => gunzip(raw, limit)?,
        Some(other) => return Err(DecodeError::Unsupported(other.to_string())),
    };
    if decoded.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(decoded)
}

/// Inflates a raw RFC 1951 stream that must end exactly where the body ends.
///
/// `Content-Encoding: deflate` means raw deflate to OneCollector: a zlib-wrapped (RFC 1950)
/// body, what many HTTP stacks produce under that name, is refused and said to be so.
fn inflate_raw(raw: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let corrupt = |why: String| {
        if looks_zlib_wrapped(raw) {
            DecodeError::Corrupt(
                "Content-Encoding: deflate must be a raw RFC 1951 stream; this body is \
                 zlib-wrapped (RFC 1950)"
                    .to_string(),
            )
        } else {
            DecodeError::Corrupt(format!("Body is not a valid raw deflate stream: {why}"))
        }
    };
    let mut inflater = Decompress::new(false);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let consumed = in_before as usize;
        let status = inflater
            .decompress(&raw[consumed..], &mut chunk, FlushDecompress::None)
            .map_err(|e| corrupt(e.to_string()))?;
        let produced = (inflater.total_out() - out_before) as usize;
        if out.len() + produced > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk[..produced]);
        match status {
            Status::StreamEnd if inflater.total_in() as usize == raw.len() => return Ok(out),
            Status::StreamEnd => return Err(corrupt("data after the end of the stream".into())),
            Status::Ok | Status::BufError => {
                if produced == 0 && inflater.total_in() == in_before {
                    return Err(corrupt("the stream is truncated".into()));
                }
            }
        }
    }
}

/// Whether `raw` starts with a valid RFC 1950 header (deflate method, check bits right).
fn looks_zlib_wrapped(raw: &[u8]) -> bool {
    match raw {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Err(DecodeError::Corrupt(
            "Body is not a gzip stream (no gzip magic)".to_string(),
        ));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(format!("Body is not a valid gzip stream: {e}")))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_deflate_and_gzip_round_trip() {
        let data = b"{\"a\":1}\n{\"b\":2}\n".repeat(100);
        assert_eq!(
            decode_body(Some("deflate"), &deflate(&data), 1 << 20).unwrap(),
            data
        );
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&data).unwrap();
        let gz = g.finish().unwrap();
        assert_eq!(decode_body(Some("GZIP"), &gz, 1 << 20).unwrap(), data);
        assert_eq!(decode_body(None, &data, 1 << 20).unwrap(), data);
    }

    #[test]
    fn zlib_wrapped_deflate_is_refused_by_name() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"{\"a\":1}\n").unwrap();
        let err = decode_body(Some("deflate"), &z.finish().unwrap(), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Corrupt(m) if m.contains("zlib-wrapped")),
            "{err}"
        );
    }

    #[test]
    fn truncated_trailing_and_garbage_streams_are_refused() {
        let full = deflate(&b"hello world ".repeat(1000));
        let cut = &full[..full.len() / 2];
        assert!(matches!(
            decode_body(Some("deflate"), cut, 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
        let mut trailing = full.clone();
        trailing.extend_from_slice(b"junk");
        assert!(matches!(
            decode_body(Some("deflate"), &trailing, 1 << 20),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(decode_body(Some("gzip"), b"not gzip", 1 << 20).is_err());
        assert_eq!(
            decode_body(Some("br"), b"x", 10),
            Err(DecodeError::Unsupported("br".into()))
        );
    }

    #[test]
    fn the_inflated_size_is_bounded() {
        let bomb = deflate(&vec![b'a'; 1 << 20]);
        assert_eq!(
            decode_body(Some("deflate"), &bomb, 1000),
            Err(DecodeError::TooLarge { limit: 1000 })
        );
        assert_eq!(
            decode_body(None, &[b'a'; 11], 10),
            Err(DecodeError::TooLarge { limit: 10 })
        );
    }
}
