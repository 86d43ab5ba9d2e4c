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
    pub(crate) items: Vec<(String, String)>,
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
        let Some(value) = value else {
            self.items.retain(|(n, _)| n != name);
            return;
        };
        let fragment = format!("{}:{}", Value::String(name.to_owned()), value);
        match self.items.iter_mut().find(|(n, _)| n == name) {
            Some(item) => item.1 = fragment,
            None => self.items.push((name.to_owned(), fragment)),
        }
    }

    /// `props` (a checked JSON object; None is `{}`) with every common property it does not
    /// name added at its end: the event's own key wins, and its own text is kept as it is.
    pub(crate) fn merge(&self, props: Option<&str>) -> Result<String> {
        let own = props.unwrap_or("{}");
        let keys: HashSet<String> = match props {
            None => Default::default(),
            Some(p) => {
                let map: HashMap<String, serde::de::IgnoredAny> = serde_json::from_str(p)
                    .map_err(|e| Error::event(format!("properties must be a JSON object: {e}")))?;
                map.into_keys().collect()
            }
        };
        let close = own.rfind('}').unwrap_or(own.len());
        let mut out = String::with_capacity(own.len() + 64);
        out.push_str(&own[..close]);
        let mut empty = keys.is_empty() && own[..close].trim_end().ends_with('{');
        for (name, fragment) in &self.items {
            if keys.contains(name) {
                continue;
            }
            if !empty {
                out.push(',');
            }
            empty = false;
            out.push_str(fragment);
        }
        out.push_str(&own[close..]);
        Ok(out)
    }
}
