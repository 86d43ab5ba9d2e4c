//! The `scrub` configuration value: which detectors run.

use crate::model::status::{excerpt, Error, Result};
use crate::privacy::detect::Detector;
use serde_json::Value;

/// A set of detectors (bit `d as u8` for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detectors(u8);

impl Default for Detectors {
    /// `["email", "user_path"]`.
    fn default() -> Self {
        Detectors::of(&[Detector::Email, Detector::UserPath])
    }
}

impl Detectors {
    pub const NONE: Detectors = Detectors(0);
    pub const ALL: Detectors = Detectors(0b11_1111);

    pub(crate) fn of(detectors: &[Detector]) -> Detectors {
        Detectors(detectors.iter().fold(0, |bits, d| bits | 1 << *d as u8))
    }

    pub(crate) fn contains(self, d: Detector) -> bool {
        self.0 & 1 << d as u8 != 0
    }

    /// Whether it holds a detector that `other` does not.
    pub(crate) fn any_but(self, other: Detectors) -> bool {
        self.0 & !other.0 != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The configured detectors, in the order they run: the table's.
    pub(crate) fn iter(self) -> impl Iterator<Item = Detector> {
        Detector::ALL.into_iter().filter(move |d| self.contains(*d))
    }

    /// Their names, in the table's order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Detector::name).collect()
    }

    /// The `scrub` configuration value: an array of detector names (`[]` turns scrubbing
    /// off; a name may repeat). Anything else is refused with a message naming the problem.
    pub fn from_json(value: &Value) -> Result<Detectors> {
        let known = || {
            Detector::ALL
                .iter()
                .map(|d| format!("\"{}\"", d.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Value::Array(items) = value else {
            return Err(Error::config(format!(
                "scrub must be an array of detector names ({}), or [] to turn scrubbing off; got {}",
                known(),
                excerpt(&value.to_string())
            )));
        };
        let mut set = Detectors::NONE;
        for item in items {
            let detector = item.as_str().and_then(Detector::from_name).ok_or_else(|| {
                Error::config(format!(
                    "scrub: {} is not a detector (known detectors: {})",
                    excerpt(&item.to_string()),
                    known()
                ))
            })?;
            set.0 |= 1 << detector as u8;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_scrub_value() {
        assert_eq!(Detectors::from_json(&json!([])).unwrap(), Detectors::NONE);
        assert_eq!(
            Detectors::from_json(&json!(["email", "user_path"])).unwrap(),
            Detectors::default()
        );
        let reversed = json!([
            "token",
            "guid",
            "ipv6",
            "ipv4",
            "user_path",
            "email",
            "guid"
        ]);
        let set = Detectors::from_json(&reversed).unwrap();
        assert_eq!(set, Detectors::ALL);
        assert_eq!(
            set.names(),
            ["email", "user_path", "ipv4", "ipv6", "guid", "token"]
        );
        for (bad, word) in [
            (json!(["email", "phone"]), "\"phone\" is not a detector"),
            (json!(["Email"]), "\"Email\""),
            (json!([1]), "1 is not a detector"),
            (json!("email"), "must be an array"),
            (json!({"email": true}), "must be an array"),
            (json!(null), "must be an array"),
        ] {
            let e = Detectors::from_json(&bad).unwrap_err();
            assert_eq!(e.status, crate::model::status::Status::InvalidConfig);
            assert!(e.message.contains(word), "{bad}: {}", e.message);
            assert!(e.message.contains("scrub"), "{}", e.message);
        }
        let e = Detectors::from_json(&json!(["x".repeat(10_000)])).unwrap_err();
        assert!(e.message.len() < 400, "an excerpt, not the whole value");
    }
}
