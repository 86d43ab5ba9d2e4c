//! Random identifiers: session ids, the sdk epoch, the device id, backoff jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Fills `buf` from the OS generator; falls back to the standard library's per-process random
/// hash keys if the OS refuses (an identifier must never make `tel_init` fail).
pub fn fill(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        for chunk in buf.chunks_mut(8) {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(crate::sys::clock::now_ms());
            let v = h.finish().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

/// A random (version 4) UUID in its canonical lowercase form.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A small, fast generator for jitter (not for identifiers).
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Self {
        Jitter(u64() | 1)
    }
    /// A uniform value in `0..=max`.
    pub fn up_to(&mut self, max: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if max == u64::MAX {
            r
        } else {
            r % (max + 1)
        }
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

pub fn is_uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = super::uuid4();
        let b = super::uuid4();
        assert!(super::is_uuid_like(&a));
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, b);
    }
}
