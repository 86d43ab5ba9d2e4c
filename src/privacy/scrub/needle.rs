//! A word searched for in whole texts (the user's name, the last part of the home folder).

use memchr::memmem;

/// A word searched for in whole texts: SIMD substring search, or under Windows rules an ASCII
/// case-insensitive scan (the word is then lower case).
#[derive(Debug, Clone)]
pub(super) struct Needle {
    finder: memmem::Finder<'static>,
    any_case: bool,
}

impl Needle {
    pub(super) fn new(word: &str, windows: bool) -> Needle {
        Needle {
            finder: memmem::Finder::new(word.as_bytes()).into_owned(),
            any_case: windows && word.bytes().any(|b| b.is_ascii_lowercase()),
        }
    }

    pub(super) fn is_in(&self, hay: &[u8]) -> bool {
        if !self.any_case {
            return self.finder.find(hay).is_some();
        }
        self.any_case_positions(hay).next().is_some()
    }

    /// Appends where the word begins in `hay` to `out`.
    pub(super) fn positions_into(&self, hay: &[u8], out: &mut Vec<usize>) {
        if self.any_case {
            out.extend(self.any_case_positions(hay));
        } else {
            out.extend(self.finder.find_iter(hay));
        }
    }

    fn any_case_positions<'h>(&'h self, hay: &'h [u8]) -> impl Iterator<Item = usize> + 'h {
        let word = self.finder.needle();
        hay.windows(word.len())
            .enumerate()
            .filter(move |(_, w)| {
                w.iter()
                    .zip(word)
                    .all(|(h, n)| h.to_ascii_lowercase() == *n)
            })
            .map(|(i, _)| i)
    }
}
