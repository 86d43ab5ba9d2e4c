//! The session configuration: `tel_init`'s JSON object, its defaults and its validation
//! (abi.md, "Configuration").

pub use crate::model::endpoint::{is_loopback_host, Endpoint, Scheme};
use crate::model::ext::ExtOverrides;
use crate::model::ikey::InstrumentationKey;
use crate::model::status::{excerpt, Error, Result};
use serde_json::{Map, Value};
use std::path::PathBuf;

pub const DEFAULT_ENDPOINT: &str = "https://mobile.events.data.microsoft.com/OneCollector/1.0/";

/// How request bodies are compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw RFC 1951 deflate (no zlib wrapper), as OneCollector expects.
    Deflate,
    Gzip,
    /// No `Content-Encoding` header at all.
    None,
}

/// Where the cache file (and beside it the kill state and device id) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePath {
    /// The per-user cache folder + `tel/<tenant_token>.cache`.
    Default,
    /// `cache_path: null`: nothing is persisted.
    Disabled,
    File(PathBuf),
}

/// A validated session configuration. Build it from JSON with [`Config::from_json`] or from
/// code with [`Config::new`] and the public fields.
///
/// The keys, defaults and limits are those of `tel_init` (docs/abi.md, "Configuration"); every
/// refusal is [`Status::InvalidConfig`](crate::model::status::Status::InvalidConfig) with a message naming
/// the key, and never shows the full instrumentation key.
///
/// ```
/// use tel::{CachePath, Compression, Config, Status};
///
/// # fn main() -> Result<(), tel::Error> {
/// // From code: the defaults, then the fields to change.
/// let mut config = Config::new("YOUR_TENANT_TOKEN-YOUR-KEY")?;
/// config.cache_path = CachePath::Disabled; // undelivered events are not kept
/// config.compression = Compression::Gzip;
/// assert_eq!(config.batch_max_events, 500);
///
/// // From tel_init's JSON, `ext` fields included.
/// let config = Config::from_json(
///     r#"{"ikey":"YOUR_TENANT_TOKEN-YOUR-KEY","ext":{"app":{"ver":"1.0"}},"flush_interval_ms":200}"#,
/// )?;
/// assert_eq!(config.flush_interval_ms, 200);
///
/// // The key is `<tenant_token>-<rest>`: the tenant token is letters, digits and '_'.
/// let e = Config::new("<tenant>-<rest-of-key>").unwrap_err();
/// assert_eq!(e.status, Status::InvalidConfig);
/// assert!(e.message.contains("tenant token"), "{e}");
/// let e = Config::from_json(r#"{"ikey":"YOUR_TENANT_TOKEN-YOUR-KEY","batch_size":10}"#).unwrap_err();
/// assert!(e.message.contains("unknown configuration key \"batch_size\""), "{e}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub ikey: InstrumentationKey,
    pub endpoint: Endpoint,
    pub enabled: bool,
    pub cache_path: CachePath,
    pub ext: ExtOverrides,
    pub batch_max_events: usize,
    pub batch_max_bytes: usize,
    pub event_max_bytes: usize,
    pub flush_interval_ms: u64,
    pub queue_max_events: usize,
    pub cache_max_bytes: u64,
    pub cache_max_age_s: u64,
    pub http_timeout_ms: u64,
    pub compression: Compression,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub retry_max_attempts: u32,
    /// Batches on the wire at once, each on its own connection (1-16).
    pub max_inflight_requests: usize,
    /// Rust API only (no `tel_init` key): keep the connection to the collector between
    /// requests and resume TLS sessions (default). Off, every request opens a new connection
    /// with a full handshake; benchmarks compare the two.
    pub connection_reuse: bool,
    /// ABI 1.2 `consent`: true for `"required"` (unknown until the host records an answer).
    pub consent_required: bool,
    /// ABI 1.2 `consent_version` (1 to 2^32-1).
    pub consent_version: u64,
    /// ABI 1.2 `properties`: common properties merged into every event's `data`.
    pub properties: Map<String, Value>,
    /// ABI 1.2 `sample`, as given (the privacy layer reads it; see `api::client`).
    pub sample: Option<Value>,
    /// ABI 1.2 `scrub`, as given; None: the default detectors.
    pub scrub: Option<Value>,
    /// ABI 1.2 `audit_path`; None: `TEL_AUDIT`, if set.
    pub audit_path: Option<PathBuf>,
    /// ABI 1.2 `audit_max_bytes`.
    pub audit_max_bytes: u64,
}

/// Every key `tel_init` accepts, in abi.md's order.
pub const KEYS: &[&str] = &[
    "ikey",
    "endpoint",
    "enabled",
    "cache_path",
    "ext",
    "batch_max_events",
    "batch_max_bytes",
    "event_max_bytes",
    "flush_interval_ms",
    "queue_max_events",
    "cache_max_bytes",
    "cache_max_age_s",
    "http_timeout_ms",
    "compression",
    "retry_initial_ms",
    "retry_max_ms",
    "retry_max_attempts",
    "max_inflight_requests",
    "consent",
    "consent_version",
    "properties",
    "sample",
    "scrub",
    "audit_path",
    "audit_max_bytes",
];

impl Config {
    /// The defaults of abi.md around a full instrumentation key.
    pub fn new(ikey: &str) -> Result<Self> {
        Ok(Config {
            ikey: InstrumentationKey::parse(ikey)?,
            endpoint: Endpoint::parse(DEFAULT_ENDPOINT)?,
            enabled: true,
            cache_path: CachePath::Default,
            ext: ExtOverrides::default(),
            batch_max_events: 500,
            batch_max_bytes: 2_097_152,
            event_max_bytes: 1_000_000,
            flush_interval_ms: 1000,
            queue_max_events: 10_000,
            cache_max_bytes: 4_194_304,
            cache_max_age_s: 604_800,
            http_timeout_ms: 10_000,
            compression: Compression::Deflate,
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            retry_max_attempts: 6,
            max_inflight_requests: 4,
            connection_reuse: true,
            consent_required: false,
            consent_version: 1,
            properties: Map::new(),
            sample: None,
            scrub: None,
            audit_path: None,
            audit_max_bytes: 8_388_608,
        })
    }

    /// Parses and validates `tel_init`'s JSON. Unknown keys are refused by name.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::config(format!("configuration is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::config("configuration must be a JSON object"));
        };
        Self::from_map(&map)
    }

    pub fn from_map(map: &Map<String, Value>) -> Result<Self> {
        if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let message = format!(
                "unknown configuration key {:?} (known keys: {})",
                excerpt(unknown),
                KEYS.join(", ")
            );
            // The key's name is the caller's text too: it may hold the instrumentation key.
            let key = map.get("ikey").and_then(Value::as_str);
            return Err(Error::config(
                match key.and_then(|k| InstrumentationKey::parse(k).ok()) {
                    Some(key) => key.redact_in(&message),
                    None => message,
                },
            ));
        }
        let ikey = match map.get("ikey") {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Null) | None => {
                return Err(Error::config("configuration key \"ikey\" is required"))
            }
            Some(_) => return Err(Error::config("ikey must be a string")),
        };
        let key = InstrumentationKey::parse(ikey)?;
        // A key pasted into another field must not come back in the message either.
        Self::from_map_with_key(map, ikey)
            .map_err(|e| Error::new(e.status, key.redact_in(&e.message)))
    }

    fn from_map_with_key(map: &Map<String, Value>, ikey: &str) -> Result<Self> {
        let mut c = Config::new(ikey)?;
        let present = |k: &str| map.get(k).filter(|v| !v.is_null());
        if let Some(v) = present("endpoint") {
            let s = v
                .as_str()
                .ok_or_else(|| Error::config("endpoint must be a string"))?;
            c.endpoint = Endpoint::parse(s)?;
        }
        if let Some(v) = present("enabled") {
            c.enabled = v
                .as_bool()
                .ok_or_else(|| Error::config("enabled must be true or false"))?;
        }
        match map.get("cache_path") {
            None => {}
            Some(Value::Null) => c.cache_path = CachePath::Disabled,
            Some(Value::String(s)) if !s.is_empty() && !s.contains('\0') => {
                c.cache_path = CachePath::File(PathBuf::from(s))
            }
            Some(_) => {
                return Err(Error::config(
                    "cache_path must be a non-empty path string, or null to disable persistence",
                ))
            }
        }
        if let Some(v) = present("ext") {
            c.ext = ExtOverrides::from_json(v)?;
        }
        let int = |k: &str, min: u64, max: u64, default: u64| -> Result<u64> {
            match present(k) {
                None => Ok(default),
                Some(v) => match v.as_u64() {
                    Some(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(Error::config(format!(
                        "{k} must be an integer from {min} to {max}, got {}",
                        excerpt(&v.to_string())
                    ))),
                },
            }
        };
        const MAX_MS: u64 = 86_400_000;
        c.batch_max_events = int("batch_max_events", 1, 1_000_000, 500)? as usize;
        c.batch_max_bytes = int("batch_max_bytes", 1024, 1 << 30, 2_097_152)? as usize;
        c.event_max_bytes = int("event_max_bytes", 64, 1 << 30, 1_000_000)? as usize;
        c.flush_interval_ms = int("flush_interval_ms", 0, MAX_MS, 1000)?;
        c.queue_max_events = int("queue_max_events", 1, 100_000_000, 10_000)? as usize;
        c.cache_max_bytes = int("cache_max_bytes", 0, 1 << 40, 4_194_304)?;
        c.cache_max_age_s = int("cache_max_age_s", 1, 10 * 365 * 86_400, 604_800)?;
        c.http_timeout_ms = int("http_timeout_ms", 1, MAX_MS, 10_000)?;
        c.retry_initial_ms = int("retry_initial_ms", 1, MAX_MS, 1000)?;
        c.retry_max_ms = int("retry_max_ms", 1, MAX_MS, 300_000)?;
        c.retry_max_attempts = int("retry_max_attempts", 1, 1000, 6)? as u32;
        c.max_inflight_requests = int("max_inflight_requests", 1, 16, 4)? as usize;
        if c.retry_max_ms < c.retry_initial_ms {
            return Err(Error::config(format!(
                "retry_max_ms ({}) must not be below retry_initial_ms ({})",
                c.retry_max_ms, c.retry_initial_ms
            )));
        }
        if let Some(v) = present("compression") {
            c.compression = match v.as_str() {
                Some("deflate") => Compression::Deflate,
                Some("gzip") => Compression::Gzip,
                Some("none") => Compression::None,
                _ => {
                    return Err(Error::config(format!(
                        "compression must be \"deflate\", \"gzip\" or \"none\", got {}",
                        excerpt(&v.to_string())
                    )))
                }
            };
        }
        if let Some(v) = present("consent") {
            c.consent_required = match v.as_str() {
                Some("granted") => false,
                Some("required") => true,
                _ => {
                    return Err(Error::config(format!(
                        "consent must be \"granted\" or \"required\", got {}",
                        excerpt(&v.to_string())
                    )))
                }
            };
        }
        c.consent_version = int("consent_version", 1, u32::MAX.into(), 1)?;
        if let Some(v) = present("properties") {
            let Value::Object(props) = v else {
                return Err(Error::config(format!(
                    "properties must be a JSON object of common properties, got {}",
                    excerpt(&v.to_string())
                )));
            };
            for (name, value) in props {
                check_property(name, value)
                    .map_err(|e| Error::config(format!("properties: {}", e.message)))?;
            }
            c.properties = props.clone();
        }
        c.sample = present("sample").cloned();
        c.scrub = present("scrub").cloned();
        match map.get("audit_path") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() && !s.contains('\0') => {
                c.audit_path = Some(PathBuf::from(s))
            }
            Some(_) => {
                return Err(Error::config(
                    "audit_path must be a non-empty path string, or null for none",
                ))
            }
        }
        c.audit_max_bytes = int("audit_max_bytes", 1024, 1 << 40, 8_388_608)?;
        Ok(c)
    }
}

/// A common property (ABI 1.2): a name of 1 to 100 bytes and a JSON value that passes the
/// property checks (as a one-key object). Errors are `TEL_ERR_INVALID_EVENT`, naming the
/// property.
pub fn check_property(name: &str, value: &Value) -> Result<()> {
    if name.is_empty() || name.len() > 100 {
        return Err(Error::event(format!(
            "property name must be 1 to 100 bytes of UTF-8, got {} bytes",
            name.len()
        )));
    }
    let mut one = Map::new();
    one.insert(name.to_owned(), value.clone());
    crate::model::envelope::check_properties(&Value::Object(one).to_string())
        .map_err(|e| Error::event(format!("property {:?}: {}", excerpt(name), e.message)))
}

/// Log lines never carry the session's key.
impl crate::sys::log::Redact for Config {
    fn redact(&self, text: &str) -> String {
        self.ikey.redact_in(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Result<Config> {
        Config::from_json(json)
    }

    #[test]
    fn defaults_match_the_abi() {
        let c = cfg(r#"{"ikey":"abc-def"}"#).unwrap();
        assert_eq!(c.endpoint.url, DEFAULT_ENDPOINT);
        assert_eq!(c.batch_max_events, 500);
        assert_eq!(c.queue_max_events, 10_000);
        assert_eq!(c.compression, Compression::Deflate);
        assert_eq!(c.cache_path, CachePath::Default);
        assert_eq!(c.max_inflight_requests, 4);
    }

    #[test]
    fn rejects_with_a_message_naming_the_problem() {
        let cases = [
            (r#"{"ikey":"abc-def","bogus":1}"#, "bogus"),
            (r#"{"endpoint":"https://x/"}"#, "ikey"),
            (
                r#"{"ikey":"abc-def","endpoint":"http://example.com/"}"#,
                "loopback",
            ),
            (
                r#"{"ikey":"abc-def","endpoint":"ftp://example.com/"}"#,
                "https://",
            ),
            (r#"{"ikey":"abc-def","endpoint":""}"#, "empty"),
            (
                r#"{"ikey":"abc-def","batch_max_events":0}"#,
                "batch_max_events",
            ),
            (
                r#"{"ikey":"abc-def","batch_max_events":"5"}"#,
                "batch_max_events",
            ),
            (
                r#"{"ikey":"abc-def","compression":"brotli"}"#,
                "compression",
            ),
            (r#"{"ikey":"abc-def","cache_path":5}"#, "cache_path"),
            (
                r#"{"ikey":"abc-def","max_inflight_requests":0}"#,
                "max_inflight_requests",
            ),
            (
                r#"{"ikey":"abc-def","max_inflight_requests":17}"#,
                "max_inflight_requests",
            ),
            (r#"[1]"#, "object"),
            (r#"{"#, "JSON"),
        ];
        for (json, word) in cases {
            let e = cfg(json).unwrap_err();
            assert_eq!(e.status, crate::model::status::Status::InvalidConfig);
            assert!(e.message.contains(word), "{json}: {}", e.message);
        }
    }
}
