//! The probe matrix: which requests `telctl probe` sends, what each varies from the `minimal`
//! row, and what the collector is documented to answer (protocol.md).
//!
//! Every row is one request holding one event, sent as the library sends (NDJSON as
//! `application/x-json-stream; charset=utf-8`, raw deflate, the library's headers) except for
//! the one thing the row varies. The `--help` text is generated from this table.

use serde_json::{json, Map, Value};
use tel::internals::ext::{ExtOverrides, SessionExt, DOCUMENTED};
use tel::internals::ikey::InstrumentationKey;
use tel::Compression;

/// The body's media type the library sends.
pub const STREAM_CONTENT_TYPE: &str = "application/x-json-stream; charset=utf-8";

/// What a row should get if the collector behaves as documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Accepted,
    /// Refused, with the status the protocol notes give (shown, not enforced: a refusal with
    /// another status is still the documented outcome).
    Rejected(u16),
}

impl Expect {
    pub fn status(self) -> u16 {
        match self {
            Expect::Accepted => 200,
            Expect::Rejected(status) => status,
        }
    }
}

/// The one thing a row changes.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    Nothing,
    /// Adds `ext.<name>` with sample values of its documented fields.
    Extension(&'static str),
    /// The context `tel::Client` puts in every envelope by default.
    DefaultContext,
    /// The full key as the envelope's `iKey`, the mistake behind a persistent 401.
    FullKeyAsIkey,
    /// An `ext` field outside Common Schema 4.0.
    UndocumentedField,
    /// `ext.device.localId` without a scope prefix (a bare SHA-256 hex string).
    BareLocalId,
    ContentType(&'static str),
    Compression(Compression),
}

/// One row of the matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: String,
    /// What differs from `minimal`, for the table in `--help` and `--json`.
    pub varies: String,
    pub expect: Expect,
    change: Change,
}

/// A request ready to send.
pub struct Request {
    pub content_type: &'static str,
    pub compression: Compression,
    /// The uncompressed NDJSON body (one line).
    pub body: Vec<u8>,
}

/// What varies between runs: the key, the time, a run id that lands in every event's `data`
/// so the tenant's owner can find (or filter out) the probe's events.
pub struct Run<'a> {
    pub key: &'a InstrumentationKey,
    pub run_id: String,
    pub now_ms: u64,
}

/// A sample value for a documented `ext` field, for the fields a client typically fills.
/// Fields without one are left out of their extension's row.
fn sample(extension: &str, field: &str) -> Option<Value> {
    let value = match (extension, field) {
        ("app", "ver") => json!(env!("CARGO_PKG_VERSION")),
        ("app", "name") => json!("telctl-probe"),
        ("app", "sesId") => json!(tel::internals::random::uuid4()),
        ("os", "name") => json!(tel::internals::platform::os_name()),
        ("os", "ver") => json!(tel::internals::platform::os_version()),
        ("device", "localId") => json!(format!("r:{}", tel::internals::random::uuid4())),
        ("device", "deviceClass") => json!(std::env::consts::ARCH),
        ("user", "locale") => json!("en-US"),
        ("loc", "timezone") => json!("+00:00"),
        ("net", "type") => json!("Unknown"),
        ("cloud", "role") => json!("telctl-probe"),
        ("sdk", "ver") => json!(tel::SDK_VERSION),
        ("sdk", "epoch") => json!(tel::internals::random::uuid4()),
        ("sdk", "seq") => json!(1),
        _ => return None,
    };
    Some(value)
}

/// The sampled fields of one documented extension, in the allow-list's order.
fn sampled_fields(extension: &str) -> Vec<&'static str> {
    DOCUMENTED
        .iter()
        .find(|(name, _)| *name == extension)
        .map(|(_, fields)| {
            fields
                .iter()
                .copied()
                .filter(|field| sample(extension, field).is_some())
                .collect()
        })
        .unwrap_or_default()
}

/// The rows, in the order they are sent.
pub fn rows() -> Vec<Row> {
    let row = |id: &str, varies: &str, expect, change| Row {
        id: id.to_string(),
        varies: varies.to_string(),
        expect,
        change,
    };
    let mut rows = vec![row(
        "minimal",
        "nothing: ver, name, time, iKey o:<tenant>, empty data; no ext",
        Expect::Accepted,
        Change::Nothing,
    )];
    for (extension, _) in DOCUMENTED {
        rows.push(Row {
            id: format!("ext.{extension}"),
            varies: format!(
                "adds ext.{extension} {{{}}}",
                sampled_fields(extension).join(", ")
            ),
            expect: Expect::Accepted,
            change: Change::Extension(extension),
        });
    }
    rows.extend([
        row(
            "default-context",
            "the context tel::Client sends: os.name, os.ver, app.sesId, device.localId, sdk.ver, sdk.epoch, sdk.seq",
            Expect::Accepted,
            Change::DefaultContext,
        ),
        row(
            "ikey-full-key",
            "envelope iKey is the full key instead of o:<tenant>",
            Expect::Rejected(401),
            Change::FullKeyAsIkey,
        ),
        row(
            "undocumented-field",
            "adds ext.os.release, not a Common Schema 4.0 field",
            Expect::Rejected(400),
            Change::UndocumentedField,
        ),
        row(
            "bad-device-local-id",
            "adds ext.device.localId as a bare SHA-256 hex string (no r: prefix)",
            Expect::Rejected(400),
            Change::BareLocalId,
        ),
        row(
            "content-type-json",
            "Content-Type application/json instead of application/x-json-stream",
            Expect::Rejected(415),
            Change::ContentType("application/json"),
        ),
        row(
            "compression-none",
            "no Content-Encoding (body sent as is)",
            Expect::Accepted,
            Change::Compression(Compression::None),
        ),
        row(
            "compression-gzip",
            "Content-Encoding gzip instead of deflate",
            Expect::Accepted,
            Change::Compression(Compression::Gzip),
        ),
    ]);
    rows
}

/// The matrix as `--help` shows it.
pub fn help() -> String {
    let mut text = String::from(
        "The matrix (one request and one event per row; every row is sent as the library sends,\n\
         x-json-stream and raw deflate, except for what it varies):\n\n",
    );
    text.push_str(&format!("  {:<22}{:<10}{}\n", "ROW", "EXPECTED", "VARIES"));
    for row in rows() {
        let expected = match row.expect {
            Expect::Accepted => "200".to_string(),
            Expect::Rejected(status) => status.to_string(),
        };
        text.push_str(&format!("  {:<22}{:<10}{}\n", row.id, expected, row.varies));
    }
    text
}

/// The event name of a row: `TelctlProbe.` and the row id in letters and digits.
pub fn event_name(row: &Row) -> String {
    let mut name = String::from("TelctlProbe.");
    for part in row.id.split(['.', '-']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    name
}

/// An envelope line with the library's field order.
fn envelope(name: &str, time_ms: u64, ikey: &str, ext: Option<&Value>, data: &Value) -> String {
    let mut line = format!(
        "{{\"ver\":\"4.0\",\"name\":{},\"time\":\"{}\",\"iKey\":{}",
        Value::from(name),
        tel::internals::clock::iso8601(time_ms),
        Value::from(ikey)
    );
    if let Some(ext) = ext {
        line.push_str(",\"ext\":");
        line.push_str(&ext.to_string());
    }
    line.push_str(",\"data\":");
    line.push_str(&data.to_string());
    line.push('}');
    line
}

fn extension(name: &str) -> Value {
    let fields: Map<String, Value> = sampled_fields(name)
        .into_iter()
        .filter_map(|field| Some((field.to_string(), sample(name, field)?)))
        .collect();
    json!({ name: fields })
}

/// The default context exactly as `tel::Client::start` assembles it (a session-only device id:
/// the probe writes no device-id file).
fn default_context_line(run: &Run, name: &str, data: &Value) -> String {
    let defaults = tel::internals::ext::default_context(
        tel::internals::device::local_id(None),
        tel::internals::random::uuid4(),
    );
    let ext = SessionExt::new(&defaults, &ExtOverrides::default());
    let template = tel::internals::envelope::EnvelopeTemplate::new(&run.key.envelope_ikey(), &ext);
    template.render(name, Some(&data.to_string()), run.now_ms, 1)
}

impl Row {
    /// The request of this row.
    pub fn request(&self, run: &Run) -> Request {
        let name = event_name(self);
        let data = json!({"probe_row": self.id, "probe_run": run.run_id});
        let ikey = run.key.envelope_ikey();
        let ikey = ikey.as_str();
        let plain = |ext: Option<&Value>| envelope(&name, run.now_ms, ikey, ext, &data);
        let line = match &self.change {
            Change::Nothing | Change::ContentType(_) | Change::Compression(_) => plain(None),
            Change::Extension(name) => plain(Some(&extension(name))),
            Change::DefaultContext => default_context_line(run, &name, &data),
            Change::FullKeyAsIkey => {
                envelope(&name, run.now_ms, run.key.header_value(), None, &data)
            }
            Change::UndocumentedField => plain(Some(&json!({"os": {"release": "probe"}}))),
            Change::BareLocalId => plain(Some(&json!({"device": {
                "localId": "5b1f0a0c3e2d4f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"
            }}))),
        };
        Request {
            content_type: match self.change {
                Change::ContentType(media) => media,
                _ => STREAM_CONTENT_TYPE,
            },
            compression: match self.change {
                Change::Compression(compression) => compression,
                _ => Compression::Deflate,
            },
            body: tel::internals::transport::ndjson(std::iter::once(line.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(key: &InstrumentationKey) -> Run<'_> {
        Run {
            key,
            run_id: "run-1".into(),
            now_ms: 1_778_123_352_345,
        }
    }

    #[test]
    fn every_documented_extension_has_a_row_with_sampled_fields() {
        let rows = rows();
        for (extension, fields) in DOCUMENTED {
            let row = rows
                .iter()
                .find(|r| r.id == format!("ext.{extension}"))
                .unwrap_or_else(|| panic!("no row for ext.{extension}"));
            assert!(!sampled_fields(extension).is_empty(), "ext.{extension}");
            for field in sampled_fields(extension) {
                assert!(fields.contains(&field));
                assert!(row.varies.contains(field), "{}", row.varies);
            }
        }
        let mut ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "row ids are unique");
    }

    #[test]
    fn rows_vary_one_thing_from_minimal() {
        let key = InstrumentationKey::parse("abc123-secret-part").unwrap();
        let run = run(&key);
        let rows = rows();
        let minimal = rows[0].request(&run);
        let minimal_line: Value = serde_json::from_slice(&minimal.body).unwrap();
        for row in &rows {
            let request = row.request(&run);
            let line: Value = serde_json::from_slice(&request.body).unwrap();
            assert!(tel_emulator::is_valid_event_name(
                line["name"].as_str().unwrap()
            ));
            assert_eq!(line["data"]["probe_run"], "run-1");
            let same_envelope =
                line["ext"] == minimal_line["ext"] && line["iKey"] == minimal_line["iKey"];
            let same_wire = request.content_type == minimal.content_type
                && request.compression == minimal.compression;
            match row.change {
                Change::Nothing => assert!(same_envelope && same_wire),
                Change::ContentType(_) | Change::Compression(_) => {
                    assert!(same_envelope && !same_wire, "{}", row.id)
                }
                _ => assert!(!same_envelope && same_wire, "{}", row.id),
            }
            // The full key goes into a body on one row only, the one that shows the mistake.
            let has_key = String::from_utf8_lossy(&request.body).contains(key.header_value());
            assert_eq!(has_key, row.change == Change::FullKeyAsIkey, "{}", row.id);
        }
    }

    #[test]
    fn the_emulator_agrees_with_every_expected_verdict() {
        let key = InstrumentationKey::parse("abc123-secret-part").unwrap();
        let run = Run {
            now_ms: tel::internals::clock::now_ms(),
            ..run(&key)
        };
        for row in rows() {
            let request = row.request(&run);
            let (body, encoding) =
                tel::internals::transport::encode(&request.body, request.compression);
            let mut headers = vec![
                ("content-type".to_string(), request.content_type.to_string()),
                ("x-apikey".to_string(), key.header_value().to_string()),
                ("client-id".to_string(), "NO_AUTH".to_string()),
                ("sdk-version".to_string(), "t".to_string()),
                ("upload-time".to_string(), run.now_ms.to_string()),
            ];
            if let Some(encoding) = encoding {
                headers.push(("content-encoding".to_string(), encoding.to_string()));
            }
            let judgement = tel_emulator::judge_request(&headers, &body, None, 1 << 20);
            assert_eq!(judgement.status, row.expect.status(), "{}", row.id);
        }
    }

    #[test]
    fn help_lists_every_row() {
        let help = help();
        for row in rows() {
            assert!(help.contains(&row.id) && help.contains(&row.varies));
        }
    }
}
