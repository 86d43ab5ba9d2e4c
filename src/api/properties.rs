//! Common properties (abi.md 1.2, "Common properties"): the `properties` key at start, then
//! `tel_set_property` / `tel_client_set_property`, merged at `tel_log*` into the top level of
//! each event's `data`, where the event's own key wins.

use crate::model::status::{Error, Result};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The common properties, each rendered once as `"name":value` (abi.md 1.2).
#[derive(Default)]
pub(crate) struct CommonProperties {
    /// In the order they were given; a replaced one keeps its place.
    pub(crate) items: Vec<Common>,
    /// The length of every fragment together.
    bytes: usize,
}

/// One common property.
pub(crate) struct Common {
    name: String,
    /// `"name"` as JSON writes it: what an event's own key of that name holds.
    quoted: String,
    /// `"name":value`, as merged.
    fragment: String,
}

impl CommonProperties {
    pub(crate) fn new(map: &Map<String, Value>) -> CommonProperties {
        let mut c = CommonProperties::default();
        for (name, value) in map {
            c.set(name, Some(value));
        }
        c
    }

    pub(crate) fn set(&mut self, name: &str, value: Option<&Value>) {
        match value {
            None => self.items.retain(|c| c.name != name),
            Some(value) => {
                let quoted = Value::String(name.to_owned()).to_string();
                let fragment = format!("{quoted}:{value}");
                match self.items.iter_mut().find(|c| c.name == name) {
                    Some(item) => item.fragment = fragment,
                    None => self.items.push(Common {
                        name: name.to_owned(),
                        quoted,
                        fragment,
                    }),
                }
            }
        }
        self.bytes = self.items.iter().map(|c| c.fragment.len()).sum();
    }

    /// `props` (a checked JSON object; None is `{}`) with every common property it does not
    /// name added at its end: the event's own key wins, and its own text is kept as it is.
    pub(crate) fn merge(&self, props: Option<&str>) -> Result<String> {
        let own = props.unwrap_or("{}");
        let keys = match props {
            Some(p) if self.may_name_one(p) => own_keys(p)?,
            _ => HashSet::new(),
        };
        let close = own.rfind('}').unwrap_or(own.len());
        let mut out = String::with_capacity(own.len() + self.bytes + self.items.len());
        out.push_str(&own[..close]);
        // No value ends with '{': only an empty object's text does.
        let mut empty = own[..close].trim_end().ends_with('{');
        for c in &self.items {
            if keys.contains(c.name.as_str()) {
                continue;
            }
            if !empty {
                out.push(',');
            }
            empty = false;
            out.push_str(&c.fragment);
        }
        out.push_str(&own[close..]);
        Ok(out)
    }

    /// Whether `props` may have a top-level key of a common property's name: its quoted name
    /// occurs in the text followed by a `:` (a key, at some depth), or an escape could spell
    /// it. Most events name none of them, and are then merged without being parsed again.
    fn may_name_one(&self, props: &str) -> bool {
        let b = props.as_bytes();
        memchr::memchr(b'\\', b).is_some()
            || self.items.iter().any(|c| {
                memchr::memmem::find_iter(b, c.quoted.as_bytes()).any(|at| {
                    b[at + c.quoted.len()..]
                        .iter()
                        .find(|x| !x.is_ascii_whitespace())
                        == Some(&b':')
                })
            })
    }
}

/// The top-level keys of the JSON object `props`.
fn own_keys(props: &str) -> Result<HashSet<String>> {
    let map: HashMap<String, serde::de::IgnoredAny> = serde_json::from_str(props)
        .map_err(|e| Error::event(format!("properties must be a JSON object: {e}")))?;
    Ok(map.into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn common() -> CommonProperties {
        let map = json!({"channel": "beta", "build": 7});
        CommonProperties::new(map.as_object().unwrap())
    }

    fn merged(props: Option<&str>) -> Value {
        serde_json::from_str(&common().merge(props).unwrap()).unwrap()
    }

    #[test]
    fn merged_after_the_events_own_keys_which_win() {
        assert_eq!(merged(None), json!({"channel": "beta", "build": 7}));
        assert_eq!(merged(Some("{ }")), json!({"channel": "beta", "build": 7}));
        assert_eq!(
            merged(Some(r#"{"n":1}"#)),
            json!({"n": 1, "channel": "beta", "build": 7})
        );
        assert_eq!(
            merged(Some(r#"{"channel":"stable"}"#)),
            json!({"channel": "stable", "build": 7})
        );
        // A key spelled with an escape is still the event's own.
        assert_eq!(
            merged(Some(r#"{"\u0063hannel":"stable"}"#)),
            json!({"channel": "stable", "build": 7})
        );
        // A value that mentions a name is no key of that name.
        assert_eq!(
            merged(Some(r#"{"note":"channel"}"#)),
            json!({"note": "channel", "channel": "beta", "build": 7})
        );
    }

    #[test]
    fn set_replaces_in_place_and_none_removes() {
        let mut c = common();
        c.set("channel", Some(&json!("stable")));
        c.set("extra", Some(&Value::Null));
        c.set("build", None);
        let text = c.merge(None).unwrap();
        assert_eq!(text, r#"{"channel":"stable","extra":null}"#);
    }
}
