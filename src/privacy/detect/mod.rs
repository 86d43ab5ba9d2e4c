//! The six detectors of abi.md's Scrubbing table, each a scanner over one string that finds
//! its next match. They are written by hand rather than with a regex engine: their boundaries
//! ("not touching a letter, digit or dot") are look-around, which the `regex` crate lacks, and
//! each is a few lines of byte scanning that rejects a string at the cost of one `memchr`.
//!
//! Everything they look at is ASCII, so every match starts and ends on a character boundary of
//! the UTF-8 text; a byte of a non-ASCII character is never a letter, digit or separator here.
//!
//! Here, the table ([`Detector`]) and [`find`]; the scanners by what they look for: `address`
//! (`email`, `ipv4`, `ipv6`), `path` (`user_path`) and `ids` (`guid`, `token`), on the
//! primitives of `scan`.

mod address;
mod ids;
mod path;
mod scan;

use super::identity::UserIdentity;
pub(crate) use scan::Found;

/// One detector of the table; the discriminant is its place in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detector {
    Email = 0,
    UserPath = 1,
    Ipv4 = 2,
    Ipv6 = 3,
    Guid = 4,
    Token = 5,
}

impl Detector {
    /// Every detector, in the table's order: the order they run in.
    pub(crate) const ALL: [Detector; 6] = [
        Detector::Email,
        Detector::UserPath,
        Detector::Ipv4,
        Detector::Ipv6,
        Detector::Guid,
        Detector::Token,
    ];

    /// The name `scrub` configures it by.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::UserPath => "user_path",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::Guid => "guid",
            Detector::Token => "token",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// What `detector` finds first in `s` at or after byte `from`. Boundaries are read in the
/// whole of `s`, also before `from`.
pub(crate) fn find(detector: Detector, s: &[u8], from: usize, who: &UserIdentity) -> Option<Found> {
    match detector {
        Detector::Email => address::email(s, from),
        Detector::UserPath => path::user_path(s, from, who),
        Detector::Ipv4 => address::ipv4(s, from),
        Detector::Ipv6 => address::ipv6(s, from),
        Detector::Guid => ids::guid(s, from),
        Detector::Token => ids::token(s, from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_tables_order() {
        let names: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(
            names,
            ["email", "user_path", "ipv4", "ipv6", "guid", "token"]
        );
        for d in Detector::ALL {
            assert_eq!(Detector::from_name(d.name()), Some(d));
            assert_eq!(
                d as usize,
                Detector::ALL.iter().position(|x| *x == d).unwrap()
            );
        }
        assert_eq!(Detector::from_name("Email"), None);
    }
}
