//! The instrumentation key and the two forms it takes on the wire.
//!
//! OneCollector wants the *full* key in the `x-apikey` header and only `o:<tenant_token>` in the
//! envelope's `iKey`. Putting the full key in the envelope earns HTTP 401 "Invalid Tenant Token"
//! for every request, which is why the two forms are different types here and the full key has
//! no `Display` and a redacting `Debug`.

use crate::model::status::{Error, Result};
use std::fmt;

/// A validated full instrumentation key, `<tenant_token>-<rest>`.
#[derive(Clone, PartialEq, Eq)]
pub struct InstrumentationKey {
    full: String,
    tenant_len: usize,
}

impl InstrumentationKey {
    /// Checks the shape of a key. The tenant token names files in the cache folder, so it is kept
    /// to `[A-Za-z0-9_]`; the rest goes into an HTTP header, so it must be visible ASCII.
    pub fn parse(key: &str) -> Result<Self> {
        let Some((tenant, rest)) = key.split_once('-') else {
            return Err(Error::config(
                "ikey must have the form <tenant_token>-<rest>: it has no '-'",
            ));
        };
        if tenant.is_empty() {
            return Err(Error::config(
                "ikey must have the form <tenant_token>-<rest>: the tenant token before the first '-' is empty",
            ));
        }
        if !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Error::config(
                "ikey's tenant token (before the first '-') may hold only letters, digits and '_'",
            ));
        }
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::config(
                "ikey after the tenant token must be non-empty visible ASCII (no spaces or control characters)",
            ));
        }
        Ok(InstrumentationKey {
            full: key.to_owned(),
            tenant_len: tenant.len(),
        })
    }

    /// The tenant token: the part before the first `-`.
    pub fn tenant(&self) -> &str {
        &self.full[..self.tenant_len]
    }

    /// The value of the `x-apikey` request header: the one place the full key may go.
    pub fn header_value(&self) -> &str {
        &self.full
    }

    /// The envelope's `iKey`.
    pub fn envelope_ikey(&self) -> EnvelopeIkey {
        EnvelopeIkey(format!("o:{}", self.tenant()))
    }

    /// The key as it may appear in logs and messages: the tenant token, the rest masked.
    pub fn redacted(&self) -> String {
        format!("{}-***", self.tenant())
    }

    /// The part after the tenant token and its `-`: what must never leave the library.
    fn secret(&self) -> &str {
        &self.full[self.tenant_len + 1..]
    }

    /// Replaces every occurrence of the key in `text` by its redacted form. Used on anything
    /// that leaves the library as text (log lines, error messages).
    ///
    /// A key cut short counts as the key: `<tenant>-` followed by any start of the secret part
    /// is redacted, and so is a run of [`SECRET_PREFIX_MIN`] or more of the secret's first
    /// characters on its own. So an excerpt that truncated the key (the 200-byte body excerpt,
    /// the 64-character quote of a configuration value) shows none of the secret, whichever
    /// was done first.
    pub fn redact_in(&self, text: &str) -> String {
        let secret = self.secret().as_bytes();
        let anchor = &self.full.as_bytes()[..self.tenant_len + 1];
        let standalone = secret.len() >= SECRET_PREFIX_MIN;
        let bytes = text.as_bytes();
        let shared = |at: usize| {
            bytes[at..]
                .iter()
                .zip(secret)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (start, end) = if bytes[i..].starts_with(anchor) {
                let m = shared(i + anchor.len());
                if m > 0 {
                    (i, i + anchor.len() + m)
                } else {
                    (i, i)
                }
            } else if standalone && bytes[i] == secret[0] {
                let m = shared(i);
                if m >= SECRET_PREFIX_MIN {
                    (i, i + m)
                } else {
                    (i, i)
                }
            } else {
                (i, i)
            };
            if end > start {
                out.push_str(&text[copied..start]);
                if start + anchor.len() <= end && bytes[start..].starts_with(anchor) {
                    out.push_str(&self.redacted());
                } else {
                    out.push_str("***");
                }
                copied = end;
                i = end;
            } else {
                i += 1;
            }
        }
        out.push_str(&text[copied..]);
        out
    }
}

/// How many of the secret part's first characters, standing alone, count as the key.
const SECRET_PREFIX_MIN: usize = 6;

impl fmt::Debug for InstrumentationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentationKey({})", self.redacted())
    }
}

/// `o:<tenant_token>`: the envelope's `iKey` and the form kill-tokens name a tenant by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeIkey(String);

impl EnvelopeIkey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_dash() {
        let k = InstrumentationKey::parse("abc123-def-456").unwrap();
        assert_eq!(k.tenant(), "abc123");
        assert_eq!(k.envelope_ikey().as_str(), "o:abc123");
        assert_eq!(k.header_value(), "abc123-def-456");
        assert!(!format!("{k:?}").contains("def-456"));
        assert_eq!(
            k.redact_in("key abc123-def-456 here"),
            "key abc123-*** here"
        );
    }

    #[test]
    fn a_key_cut_short_is_redacted() {
        let k = InstrumentationKey::parse("tenant01-0123-4567-89ab-cdef").unwrap();
        assert_eq!(k.redact_in("x tenant01-0123-45"), "x tenant01-***");
        assert_eq!(k.redact_in("tenant01-0"), "tenant01-***");
        assert_eq!(k.redact_in("tenant01-zz"), "tenant01-zz");
        assert_eq!(k.redact_in("[0123-4567-89]"), "[***]");
        assert_eq!(
            k.redact_in("0123-"),
            "0123-",
            "too short to be the key alone"
        );
        assert_eq!(
            k.redact_in("é tenant01-0123-4567-89ab-cdef é"),
            "é tenant01-*** é"
        );
        assert_eq!(k.redact_in(""), "");
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            "",
            "abc",
            "-abc",
            "abc-",
            "a/b-c",
            "..-x",
            "abc-d e",
            "abc-\r\nx",
        ] {
            let e = InstrumentationKey::parse(bad).unwrap_err();
            assert_eq!(
                e.status,
                crate::model::status::Status::InvalidConfig,
                "{bad:?}"
            );
        }
    }
}
