//! The Common Schema 4.0 `ext` allow-list and the context the library fills in itself.
//!
//! Any field outside the documented ones (the known offenders are `ext.os.release` and
//! `ext.app.initTs`) makes the collector reject the whole batch with HTTP 400, so such fields
//! are refused at `tel_init`, naming the field, instead of failing every request later.

use crate::model::status::{excerpt, Error, Result};
use serde_json::Value;

/// The library's name and version as the collector sees it (`sdk-version`, `ext.sdk.ver`).
pub const SDK_VERSION: &str = concat!("onecollector-tel-", env!("CARGO_PKG_VERSION"));

/// The documented extensions and their fields (Common Schema 4.0 Bond definition), in the order
/// the envelope writes them. `sdk` is last: it is the library's own and carries `seq`.
pub const DOCUMENTED: &[(&str, &[&str])] = &[
    (
        "app",
        &[
            "id", "ver", "name", "locale", "env", "expId", "userId", "sesId", "asId",
        ],
    ),
    ("os", &["name", "ver", "locale", "bootId", "expId"]),
    (
        "device",
        &[
            "id",
            "localId",
            "authId",
            "authSecId",
            "deviceClass",
            "orgId",
            "orgAuthId",
            "make",
            "model",
            "authIdEnt",
        ],
    ),
    ("user", &["id", "localId", "authId", "locale"]),
    ("loc", &["id", "country", "timezone"]),
    ("net", &["provider", "cost", "type"]),
    (
        "cloud",
        &[
            "fullEnvName",
            "location",
            "environment",
            "deploymentUnit",
            "name",
            "roleInstance",
            "role",
        ],
    ),
    ("sdk", &["ver", "epoch", "seq", "installId"]),
];

/// Extensions that only an event can carry, as the OpenTelemetry .NET OneCollector exporter
/// sends them. Written after the session's extensions and before `sdk`.
pub const PER_EVENT: &[(&str, &[&str])] = &[
    ("dt", &["traceId", "spanId", "traceFlags"]),
    ("ex", &["type", "msg", "stack"]),
];

/// One per-event `ext` field, its value already serialised as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtField {
    pub ext: &'static str,
    pub field: &'static str,
    pub json: String,
}

/// Scope prefixes the collector accepts on `device.localId`.
pub const LOCAL_ID_PREFIXES: &[&str] = &["c:", "r:", "u:", "a:", "s:", "x:", "i:"];

pub fn has_scope_prefix(id: &str) -> bool {
    LOCAL_ID_PREFIXES
        .iter()
        .any(|p| id.len() > p.len() && id.starts_with(p))
}

/// The context the library fills in itself: `os.name`, `os.ver`, a random `app.sesId`,
/// `device.localId`, `sdk.ver` and `sdk.epoch` (`sdk.seq` is added per event).
pub fn default_context(
    local_id: String,
    epoch: String,
) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("os", "name", crate::sys::platform::os_name().to_owned()),
        ("os", "ver", crate::sys::platform::os_version()),
        ("app", "sesId", crate::sys::random::uuid4()),
        ("device", "localId", local_id),
        ("sdk", "ver", SDK_VERSION.to_owned()),
        ("sdk", "epoch", epoch),
    ]
}

/// Host-given `ext` fields, validated against [`DOCUMENTED`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtOverrides {
    fields: Vec<(&'static str, &'static str, String)>,
}

impl ExtOverrides {
    pub fn from_json(value: &Value) -> Result<Self> {
        let Value::Object(exts) = value else {
            return Err(Error::config(
                "ext must be an object of extensions, e.g. {\"app\":{\"ver\":\"1.0\"}}",
            ));
        };
        let mut fields = Vec::new();
        for (ext_name, fields_value) in exts {
            let Some(&(ext, allowed)) = DOCUMENTED.iter().find(|(n, _)| n == ext_name) else {
                return Err(Error::config(format!(
                    "ext.{} is not a documented Common Schema 4.0 extension (documented: {})",
                    excerpt(ext_name),
                    DOCUMENTED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if ext == "sdk" {
                return Err(Error::config(
                    "ext.sdk is filled by the library itself and cannot be given",
                ));
            }
            let Value::Object(given) = fields_value else {
                return Err(Error::config(format!("ext.{ext} must be an object")));
            };
            for (field_name, v) in given {
                let Some(&field) = allowed.iter().find(|f| *f == field_name) else {
                    return Err(Error::config(format!(
                        "ext.{ext}.{} is not a documented Common Schema 4.0 field (ext.{ext} allows: {})",
                        excerpt(field_name),
                        allowed.join(", ")
                    )));
                };
                let Value::String(s) = v else {
                    return Err(Error::config(format!("ext.{ext}.{field} must be a string")));
                };
                if (ext, field) == ("device", "localId") && !has_scope_prefix(s) {
                    return Err(Error::config(format!(
                        "ext.device.localId must carry a scope prefix ({}), e.g. \"r:<uuid>\"",
                        LOCAL_ID_PREFIXES.join(" ")
                    )));
                }
                fields.push((ext, field, s.clone()));
            }
        }
        Ok(ExtOverrides { fields })
    }

    pub fn get(&self, ext: &str, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(e, f, _)| *e == ext && *f == field)
            .map(|(_, _, v)| v.as_str())
    }
}

/// The context of one session: the library's defaults overridden field by field by the host's.
#[derive(Debug, Clone)]
pub struct SessionExt {
    fields: Vec<(&'static str, &'static str, String)>,
    /// The same fields with their values already as JSON strings: an event with its own `ext`
    /// fields is rendered without escaping the session's again.
    json: Vec<(&'static str, &'static str, String)>,
}

impl SessionExt {
    /// `defaults` are the library's (`os.name`, `os.ver`, `app.sesId`, `device.localId`,
    /// `sdk.ver`, `sdk.epoch`); `overrides` replace them one by one.
    pub fn new(
        defaults: &[(&'static str, &'static str, String)],
        overrides: &ExtOverrides,
    ) -> Self {
        let mut fields: Vec<(&'static str, &'static str, String)> = Vec::new();
        for (ext, field, value) in defaults.iter().chain(overrides.fields.iter()) {
            match fields.iter_mut().find(|(e, f, _)| e == ext && f == field) {
                Some(slot) => slot.2 = value.clone(),
                None => fields.push((ext, field, value.clone())),
            }
        }
        let json = fields
            .iter()
            .map(|(e, f, v)| (*e, *f, json_string(v)))
            .collect();
        SessionExt { fields, json }
    }

    pub fn get(&self, ext: &str, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(e, f, _)| *e == ext && *f == field)
            .map(|(_, _, v)| v.as_str())
    }

    /// The `ext` object up to the point where each event appends its `sdk.seq` value:
    /// `{"app":{..},..,"sdk":{"ver":"..","epoch":"..","seq":`. The event closes it with `N}}`.
    pub fn json_prefix(&self) -> String {
        self.json_prefix_with(&[])
    }

    /// As [`SessionExt::json_prefix`], with one event's own fields merged over the session's
    /// field by field (`per_event` values are already JSON). `dt` and `ex` come before `sdk`.
    pub fn json_prefix_with(&self, per_event: &[ExtField]) -> String {
        let mut out = String::from("{");
        let order = DOCUMENTED
            .iter()
            .filter(|(e, _)| *e != "sdk")
            .chain(PER_EVENT.iter())
            .chain(DOCUMENTED.iter().filter(|(e, _)| *e == "sdk"));
        for (ext, names) in order {
            let mut first = true;
            for name in *names {
                let value: &str = match per_event
                    .iter()
                    .rev()
                    .find(|f| f.ext == *ext && f.field == *name)
                {
                    Some(f) => &f.json,
                    None => match self.json.iter().find(|(e, f, _)| e == ext && f == name) {
                        Some((_, _, v)) => v,
                        None => continue,
                    },
                };
                // Extension and field names are plain ASCII identifiers: no escaping needed.
                if first {
                    out.push('"');
                    out.push_str(ext);
                    out.push_str("\":{");
                    first = false;
                } else {
                    out.push(',');
                }
                out.push('"');
                out.push_str(name);
                out.push_str("\":");
                out.push_str(value);
            }
            if *ext == "sdk" {
                if first {
                    out.push_str("\"sdk\":{");
                } else {
                    out.push(',');
                }
                out.push_str("\"seq\":");
                return out;
            }
            if !first {
                out.push_str("},");
            }
        }
        out
    }
}

pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_undocumented_fields_by_name() {
        for (v, word) in [
            (json!({"os":{"release":"x"}}), "ext.os.release"),
            (json!({"app":{"initTs":"x"}}), "ext.app.initTs"),
            (json!({"foo":{}}), "ext.foo"),
            (json!({"sdk":{"ver":"1"}}), "ext.sdk"),
            (json!({"app":{"ver":1}}), "ext.app.ver"),
            (json!({"device":{"localId":"abcdef"}}), "scope prefix"),
        ] {
            let e = ExtOverrides::from_json(&v).unwrap_err();
            assert!(e.message.contains(word), "{v}: {}", e.message);
        }
    }

    #[test]
    fn overrides_defaults_field_by_field() {
        let o = ExtOverrides::from_json(&json!({"os":{"ver":"11"},"app":{"ver":"2.0"}})).unwrap();
        let s = SessionExt::new(
            &[
                ("os", "name", "Linux".into()),
                ("os", "ver", "6.1".into()),
                ("sdk", "ver", "t-1".into()),
            ],
            &o,
        );
        let prefix = s.json_prefix();
        let full: Value = serde_json::from_str(&format!("{prefix}7}}}}")).unwrap();
        assert_eq!(
            full,
            json!({"app":{"ver":"2.0"},"os":{"name":"Linux","ver":"11"},"sdk":{"ver":"t-1","seq":7}})
        );
    }
}
