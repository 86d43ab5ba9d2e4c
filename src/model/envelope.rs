//! Common Schema 4.0 envelopes: the event-name rules, the properties check and the one
//! serialisation of each event (done once in `tel_log`, never again at send or cache time).

use crate::model::ext::SessionExt;
use crate::model::ikey::EnvelopeIkey;
use crate::model::status::{excerpt, Error, Result};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Names are 4 to 100 characters of `[A-Za-z0-9_.]`, starting and ending with a letter or digit.
/// The collector silently drops shorter names, so they are refused here where the caller sees it.
pub fn check_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    if !(4..=100).contains(&b.len()) {
        return Err(Error::event(format!(
            "event name must be 4 to 100 characters, got {}",
            b.len()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return Err(Error::event(format!(
            "event name {:?} has {bad:?}: only letters, digits, '_' and '.' are allowed",
            truncate(name, 100)
        )));
    }
    if !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return Err(Error::event(format!(
            "event name {:?} must start and end with a letter or digit",
            excerpt(name)
        )));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Accepts a JSON object at the top level and walks (without building) everything inside it.
struct ObjectOnly;

impl<'de> Visitor<'de> for ObjectOnly {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(AnyValue { depth: 2 })?;
        }
        Ok(())
    }
}

/// Deepest nesting of arrays and objects accepted in properties: the envelope adds one level,
/// and common JSON parsers (serde_json among them) refuse a 128th level.
pub const MAX_DEPTH: usize = 126;

/// Any JSON value, visited through `deserialize_any` so that every number is parsed: a number
/// no double can hold (`1e999999`) is refused here rather than making the collector refuse the
/// whole batch. `depth` is the nesting level an array or object starting here would have (the
/// top-level object is 1); past [`MAX_DEPTH`] it is refused, in the same single pass.
#[derive(Clone, Copy)]
struct AnyValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for AnyValue {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl AnyValue {
    fn nested<E: serde::de::Error>(self) -> std::result::Result<AnyValue, E> {
        if self.depth > MAX_DEPTH {
            Err(E::custom(format_args!(
                "nested more than {MAX_DEPTH} levels deep"
            )))
        } else {
            Ok(AnyValue {
                depth: self.depth + 1,
            })
        }
    }
}

impl<'de> Visitor<'de> for AnyValue {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let inner = self.nested()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// Checks that `props` is one JSON object nested at most [`MAX_DEPTH`] levels deep.
///
/// A refusal says what is wrong and where, then quotes the properties themselves through
/// [`excerpt`] (so a cut quote ends with the length of the properties).
pub fn check_properties(props: &str) -> Result<()> {
    let mut de = serde_json::Deserializer::from_str(props);
    de.deserialize_map(ObjectOnly)
        .and_then(|()| de.end())
        .map_err(|e| {
            Error::event(format!(
                "properties must be a JSON object{}; properties: {}",
                refusal(&e, props),
                excerpt(props)
            ))
        })
}

/// What serde_json found wrong, without the value it quotes: its "invalid type" message
/// repeats a string value whole (up to `event_max_bytes`); the kind of value is enough, as the
/// properties are quoted after it.
fn refusal(e: &serde_json::Error, props: &str) -> String {
    let kind = match props
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first()
    {
        Some(b'"') => Some("a string"),
        Some(b'[') => Some("an array"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        _ => None,
    };
    match (e.classify(), kind) {
        (serde_json::error::Category::Data, Some(kind)) => format!(", not {kind}"),
        _ => format!(": {e}"),
    }
}

/// Everything of an envelope that is fixed for a session, split around the per-event parts.
#[derive(Debug, Clone)]
pub struct EnvelopeTemplate {
    /// `","iKey":"o:<tenant>","ext":`
    ikey_and_ext_key: String,
    /// `","iKey":"o:<tenant>","ext":{...,"sdk":{...,"seq":`
    after_time: String,
}

impl EnvelopeTemplate {
    pub fn new(ikey: &EnvelopeIkey, ext: &SessionExt) -> Self {
        let ikey_and_ext_key = format!(
            "\",\"iKey\":{},\"ext\":",
            crate::model::ext::json_string(ikey.as_str())
        );
        EnvelopeTemplate {
            after_time: format!("{ikey_and_ext_key}{}", ext.json_prefix()),
            ikey_and_ext_key,
        }
    }

    /// Bytes of an envelope besides the name and the properties.
    pub fn overhead(&self) -> usize {
        // {"ver":"4.0","name":"  + ","time":" + 24 + after_time + seq (<=20) + }},"data": + }
        22 + 10 + 24 + self.after_time.len() + 20 + 10 + 1
    }

    /// The exact length of the line [`EnvelopeTemplate::render`] (or, with `ext_prefix`,
    /// [`EnvelopeTemplate::render_with_ext`]) would write: lets a caller refuse an oversized
    /// event before it takes a sequence number.
    pub fn rendered_len(
        &self,
        name: &str,
        props: Option<&str>,
        seq: u64,
        ext_prefix: Option<&str>,
    ) -> usize {
        let after_time = match ext_prefix {
            Some(p) => self.ikey_and_ext_key.len() + p.len(),
            None => self.after_time.len(),
        };
        let digits = seq.checked_ilog10().unwrap_or(0) as usize + 1;
        // {"ver":"4.0","name":" + name + ","time":" + 24 + after_time + seq + }},"data": + props + }
        21 + name.len() + 10 + 24 + after_time + digits + 10 + props.map_or(2, str::len) + 1
    }

    /// One envelope line (no trailing newline). `props` must have passed [`check_properties`].
    pub fn render(&self, name: &str, props: Option<&str>, time_ms: u64, seq: u64) -> String {
        render(name, props, time_ms, seq, &self.after_time, self.overhead())
    }

    /// As [`EnvelopeTemplate::render`], with an event's own `ext` object prefix (from
    /// [`SessionExt::json_prefix_with`]) instead of the session's.
    pub fn render_with_ext(
        &self,
        name: &str,
        props: Option<&str>,
        time_ms: u64,
        seq: u64,
        ext_prefix: &str,
    ) -> String {
        let after_time = format!("{}{ext_prefix}", self.ikey_and_ext_key);
        let overhead = self.overhead() + ext_prefix.len();
        render(name, props, time_ms, seq, &after_time, overhead)
    }
}

fn render(
    name: &str,
    props: Option<&str>,
    time_ms: u64,
    seq: u64,
    after_time: &str,
    overhead: usize,
) -> String {
    let props = props.unwrap_or("{}");
    let mut s = String::with_capacity(overhead + name.len() + props.len());
    s.push_str("{\"ver\":\"4.0\",\"name\":\"");
    s.push_str(name);
    s.push_str("\",\"time\":\"");
    crate::sys::clock::write_iso8601(&mut s, time_ms);
    s.push_str(after_time);
    let mut digits = [0u8; 20];
    let mut n = seq;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
    s.push_str("}},\"data\":");
    // Valid JSON holds raw CR/LF only as whitespace between tokens; replacing them keeps
    // one envelope per line without re-serialising the properties.
    if props.bytes().any(|b| b == b'\n' || b == b'\r') {
        s.extend(
            props
                .chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
    } else {
        s.push_str(props);
    }
    s.push('}');
    s
}

/// The event name of an envelope line this library wrote (`{"ver":"4.0","name":"<name>",...`);
/// names never hold a quote, so the first one ends it.
pub fn envelope_name(line: &str) -> &str {
    const START: &str = "{\"ver\":\"4.0\",\"name\":\"";
    line.strip_prefix(START)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// Reads an envelope's `time` back (for cache age) without parsing the whole line.
pub fn envelope_time_ms(line: &str) -> Option<u64> {
    let at = line.find("\"time\":\"")? + 8;
    crate::sys::clock::parse_iso8601(line.get(at..at + 24)?)
}

/// The checks `tel_log` makes, on a line read back (from a cache file): its size, one line (no CR), valid JSON
/// whose numbers a double can hold, version 4.0, a valid name, a readable time, an object
/// as `data`. A line that fails them was never written by `tel_log`: sent, it would get the
/// whole batch refused.
pub fn check_line(line: &str, max_len: usize) -> std::result::Result<(), String> {
    if line.len() > max_len {
        return Err(format!("longer than event_max_bytes ({max_len})"));
    }
    if line.contains('\r') {
        return Err("holds a carriage return".into());
    }
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    if v.get("ver").and_then(|v| v.as_str()) != Some("4.0") {
        return Err("not a Common Schema 4.0 envelope".into());
    }
    let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("");
    check_name(name).map_err(|e| e.message)?;
    if !v.get("data").is_some_and(|d| d.is_object()) {
        return Err("its data is not a JSON object".into());
    }
    let time = v.get("time").and_then(|t| t.as_str()).unwrap_or("");
    crate::sys::clock::parse_iso8601(time)
        .map(|_| ())
        .ok_or_else(|| "its time is unreadable".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ext::{ExtOverrides, SessionExt};
    use crate::model::ikey::InstrumentationKey;

    #[test]
    fn names() {
        for ok in ["abcd", "Action.Build_2", &"a".repeat(100)] {
            check_name(ok).unwrap();
        }
        for bad in [
            "abc",
            "_abc",
            "abc.",
            "ab cd",
            "héllo",
            &"a".repeat(101),
            "",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn properties() {
        check_properties(r#"{"a":[1,{"b":null}],"c":"x"}"#).unwrap();
        check_properties(" {\n} ").unwrap();
        for bad in ["[]", "1", "\"x\"", "{", "{}{}", "null", &"[".repeat(200)] {
            assert!(check_properties(bad).is_err(), "{bad}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_properties(&deep).is_err());
    }

    #[test]
    fn renders_one_line_cs40_envelope() {
        let key = InstrumentationKey::parse("tenant1-secret-part").unwrap();
        let ext = SessionExt::new(&[("os", "name", "Linux".into())], &ExtOverrides::default());
        let t = EnvelopeTemplate::new(&key.envelope_ikey(), &ext);
        let line = t.render("My.Event", Some("{\"a\":\n1}"), 1_778_123_352_345, 17);
        assert!(!line.contains('\n'));
        assert!(!line.contains("secret"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ver"], "4.0");
        assert_eq!(v["iKey"], "o:tenant1");
        assert_eq!(v["time"], "2026-05-07T03:09:12.345Z");
        assert_eq!(v["ext"]["sdk"]["seq"], 17);
        assert_eq!(v["data"]["a"], 1);
        assert!(line.len() <= t.overhead() + 8 + 8);
        assert_eq!(
            line.len(),
            t.rendered_len("My.Event", Some("{\"a\":\n1}"), 17, None)
        );
        let custom = t.render_with_ext("My.Event", None, 0, 1_000, "{\"sdk\":{\"seq\":");
        assert_eq!(
            custom.len(),
            t.rendered_len("My.Event", None, 1_000, Some("{\"sdk\":{\"seq\":"))
        );
        assert_eq!(envelope_name(&custom), "My.Event");
        assert_eq!(envelope_time_ms(&line), Some(1_778_123_352_345));
    }
}
