//! Sampling (abi.md, "Sampling"): population sampling, a pure function of the device id and
//! the event name, so that a device sends every event of a name or none, in every process that
//! shares its device id, on every platform and in every version of the library.

use crate::model::envelope::check_name;
use crate::model::status::{excerpt, Error, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The `sample` configuration value: a default rate and rates per exact event name.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRates {
    /// `rate`: for events not named in `events`; None means 1.
    pub rate: Option<f64>,
    /// `events`: exact event name -> rate.
    pub events: HashMap<String, f64>,
}

impl SampleRates {
    /// Parses `{"rate": r, "events": {"Exact.Name": r2, ...}}` (either key optional, rates
    /// numbers in [0, 1], names valid event names). Anything else is refused with a message
    /// naming the key.
    pub fn from_json(value: &Value) -> Result<SampleRates> {
        let Value::Object(map) = value else {
            return Err(Error::config(format!(
                "sample must be an object like {{\"rate\": 0.1, \"events\": {{\"Event.Name\": 1}}}}, got {}",
                excerpt(&value.to_string())
            )));
        };
        if let Some(unknown) = map.keys().find(|k| *k != "rate" && *k != "events") {
            return Err(Error::config(format!(
                "sample.{} is not a known key (known keys: rate, events)",
                excerpt(unknown)
            )));
        }
        let rate = map
            .get("rate")
            .map(|r| rate_of(r, || "sample.rate".to_owned()))
            .transpose()?;
        let events = match map.get("events") {
            None => HashMap::new(),
            Some(Value::Object(events)) => parse_events(events)?,
            Some(other) => {
                return Err(Error::config(format!(
                    "sample.events must be an object of event name -> rate, got {}",
                    excerpt(&other.to_string())
                )))
            }
        };
        Ok(SampleRates { rate, events })
    }

    /// The rate of events named `name`: `events[name]`, else `rate`, else 1.
    pub fn rate_of(&self, name: &str) -> f64 {
        self.events.get(name).copied().or(self.rate).unwrap_or(1.0)
    }

    /// Whether the device `local_id` keeps events named `name` (see [`keeps`]).
    pub fn keeps(&self, local_id: &str, name: &str) -> bool {
        keeps(local_id, name, self.rate_of(name))
    }
}

fn parse_events(events: &Map<String, Value>) -> Result<HashMap<String, f64>> {
    let mut rates = HashMap::with_capacity(events.len());
    for (name, r) in events {
        // A name no event can have would never apply: most likely a typo, said now.
        check_name(name).map_err(|e| {
            Error::config(format!(
                "sample.events: {:?} is not an event name: {}",
                excerpt(name),
                e.message
            ))
        })?;
        rates.insert(
            name.clone(),
            rate_of(r, || format!("sample.events.{name}"))?,
        );
    }
    Ok(rates)
}

fn rate_of(value: &Value, key: impl Fn() -> String) -> Result<f64> {
    match value.as_f64() {
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(Error::config(format!(
            "{} must be a number from 0 to 1, got {}",
            key(),
            excerpt(&value.to_string())
        ))),
    }
}

/// Whether a device keeps (sends) the events of a name at `rate`.
///
/// The decision is `u < rate`, with `u` in [0, 1) computed as follows, so that any tool can
/// reproduce it:
///
/// 1. `h` = FNV-1a 64 of the bytes `local_id`, one zero byte, `name` (UTF-8): start from
///    `0xcbf29ce484222325`; for each byte, `h = (h ^ byte) * 0x100000001b3` (mod 2^64).
/// 2. `h` is mixed by MurmurHash3's 64-bit finalizer (FNV-1a alone leaves the high bits of
///    close inputs close): `h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33;
///    h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33` (mod 2^64).
/// 3. `u = (h >> 11) / 2^53`.
///
/// `local_id` is `ext.device.localId` as sent (`r:<uuid>`, or the host's own). Rate 0 drops
/// every event, rate 1 keeps every one; a rate outside [0, 1] behaves as the nearest bound.
pub fn keeps(local_id: &str, name: &str, rate: f64) -> bool {
    unit_interval(local_id, name) < rate
}

/// `u` of [`keeps`]: where the device and name fall in [0, 1).
pub fn unit_interval(local_id: &str, name: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in local_id
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(name.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Device ids as the library makes them (`r:` and a version-4 UUID), from a counter.
    fn device(i: u64) -> String {
        let x = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let y = x.rotate_left(29) ^ i;
        format!(
            "r:{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            y & 0xfff,
            y >> 16
        )
    }

    #[test]
    fn the_value_and_its_errors() {
        let s = SampleRates::from_json(
            &json!({"rate": 0.25, "events": {"App.Start": 1, "App.Tick": 0}}),
        )
        .unwrap();
        assert_eq!(s.rate_of("App.Start"), 1.0);
        assert_eq!(s.rate_of("App.Tick"), 0.0);
        assert_eq!(s.rate_of("App.Other"), 0.25);
        let only_events = SampleRates::from_json(&json!({"events": {"App.Tick": 0.5}})).unwrap();
        assert_eq!(only_events.rate_of("App.Other"), 1.0, "no rate: 1");
        assert_eq!(
            SampleRates::from_json(&json!({})).unwrap().rate_of("A.B.C"),
            1.0
        );
        for (bad, words) in [
            (
                json!({"rate": 1.5}),
                "sample.rate must be a number from 0 to 1, got 1.5",
            ),
            (json!({"rate": -0.1}), "sample.rate"),
            (json!({"rate": "0.5"}), "sample.rate"),
            (json!({"rate": null}), "sample.rate"),
            (
                json!({"events": {"App.Tick": 2}}),
                "sample.events.App.Tick must be",
            ),
            (
                json!({"events": {"App.Tick": true}}),
                "sample.events.App.Tick",
            ),
            (json!({"events": [1]}), "sample.events must be an object"),
            (
                json!({"events": {"ab": 1}}),
                "sample.events: \"ab\" is not an event name",
            ),
            (json!({"rates": 1}), "sample.rates is not a known key"),
            (json!(0.5), "sample must be an object"),
        ] {
            let e = SampleRates::from_json(&bad).unwrap_err();
            assert_eq!(e.status, crate::model::status::Status::InvalidConfig);
            assert!(e.message.contains(words), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn rate_zero_drops_all_rate_one_keeps_all() {
        for i in 0..10_000 {
            let id = device(i);
            assert!(!keeps(&id, "App.Event", 0.0));
            assert!(keeps(&id, "App.Event", 1.0));
            let u = unit_interval(&id, "App.Event");
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn the_kept_fraction_is_close_to_the_rate() {
        const DEVICES: u64 = 100_000;
        for rate in [0.01, 0.1, 0.5, 0.9] {
            for name in ["App.Start", "Tool.Build_2"] {
                let kept = (0..DEVICES)
                    .filter(|&i| keeps(&device(i), name, rate))
                    .count();
                let fraction = kept as f64 / DEVICES as f64;
                // Six standard deviations of a binomial fraction: a fixed set of ids, so this
                // either always holds or never does.
                let tolerance = 6.0 * (rate * (1.0 - rate) / DEVICES as f64).sqrt();
                assert!(
                    (fraction - rate).abs() < tolerance,
                    "{name} at {rate}: {fraction} kept"
                );
            }
        }
    }

    #[test]
    fn a_device_decides_per_name_the_same_way_every_time() {
        let s = SampleRates::from_json(&json!({"rate": 0.5})).unwrap();
        let id = device(7);
        let first: Vec<bool> = (0..50)
            .map(|n| s.keeps(&id, &format!("App.E{n}")))
            .collect();
        let again: Vec<bool> = (0..50)
            .map(|n| s.keeps(&id, &format!("App.E{n}")))
            .collect();
        assert_eq!(first, again);
        // Names are decided independently: some kept, some not.
        assert!(first.iter().any(|k| *k) && first.iter().any(|k| !*k));
    }

    #[test]
    fn the_formula_is_pinned() {
        // Values of the documented formula, computed by a separate implementation of the doc
        // comment (0.7446388835076866, 0.10315008357725552, 0.722706486340339); a change here
        // changes which devices send which events, for every user of the library.
        let id = "r:0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(unit_interval(id, "App.Start").to_bits(), PINNED[0]);
        assert_eq!(unit_interval(id, "App.Stop").to_bits(), PINNED[1]);
        assert_eq!(unit_interval("", "").to_bits(), PINNED[2]);
    }

    const PINNED: [u64; 3] = [
        0x3fe7_d414_ec7f_dadf,
        0x3fba_680b_3b8b_4238,
        0x3fe7_2069_5a6e_0ade,
    ];
}
