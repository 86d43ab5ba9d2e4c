//! The answer's head as the collector wrote it, minus the header lines no HTTP parser accepts.
//!
//! ureq's parser (httparse) refuses a whole response when one header line holds a control
//! character, or is no `name: value` line at all. The request then counts as a network failure
//! and is retried, although a `200` status line had already said that the collector took the
//! events: they would be sent again. The status line is the verdict, and a malformed header
//! line is an optional header gone wrong, so this transport sits under the parser (at the end
//! of ureq's connector chain, inside TLS and any `CONNECT` tunnel) and leaves such a line out
//! of the head it hands on; the first one of a session is logged. A `kill-tokens` line holding
//! a control character is left out like any other: 1DS refuses such tokens too.
//!
//! Only the head is touched: the status line, and every byte from the blank line that ends the
//! head to the next request, go through as they came. A head longer than
//! [`MAX_RESPONSE_HEADERS`] goes through unfiltered, for the parser's own cap to refuse.

use super::reply::MAX_RESPONSE_HEADERS;
use crate::sys::log::{tel_log, Level};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// What a session remembers of the lines it left out: only whether it said so already.
#[derive(Debug, Default)]
pub struct Dropped {
    logged: AtomicBool,
}

impl Dropped {
    fn note(&self, why: &str) {
        if !self.logged.swap(true, Ordering::Relaxed) {
            tel_log!(
                Level::Info,
                "the collector's answer held a header line that HTTP does not allow ({why}): the line was ignored and the answer taken by its status line (said once per session)"
            );
        } else {
            tel_log!(
                Level::Debug,
                "ignored a header line of the collector's answer ({why})"
            );
        }
    }
}

/// The last link of the connector chain: wraps each connection to the collector in a
/// [`Filtered`] transport. The chain also runs to open the connection to a `CONNECT` proxy,
/// whose answer and the TLS stream it then carries are not the collector's answers: that
/// connection goes through untouched.
#[derive(Debug)]
pub struct Filter {
    /// The collector's host (no IPv6 brackets) and port.
    pub host: String,
    pub port: u16,
    pub dropped: Arc<Dropped>,
}

impl Filter {
    fn to_collector(&self, details: &ConnectionDetails) -> bool {
        let uri = details.uri;
        let host = uri.host().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => 80,
            _ => 443,
        });
        host.eq_ignore_ascii_case(&self.host) && port == self.port
    }
}

impl Connector<Box<dyn Transport>> for Filter {
    type Out = Filtered;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let state = if self.to_collector(details) {
            State::Awaiting
        } else {
            State::Untouched
        };
        Ok(chained.map(|inner| Filtered {
            inner,
            input: Vec::new(),
            start: 0,
            progress: false,
            spare: Vec::new(),
            state,
            line: Vec::new(),
            head_bytes: 0,
            dropped: self.dropped.clone(),
        }))
    }
}

/// Where the answer being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the status line (after a request was written).
    Awaiting,
    /// In the header lines; `interim` for a 1xx answer, which another head follows;
    /// `dropping` while the continuation lines of a left-out line follow it.
    Headers { interim: bool, dropping: bool },
    /// The body, and anything else up to the next request: passed on untouched.
    Body,
    /// A connection that is not to the collector: nothing is ever filtered.
    Untouched,
}

/// A connection whose answer heads are cleaned of malformed header lines.
#[derive(Debug)]
pub struct Filtered {
    inner: Box<dyn Transport>,
    /// What the parser reads: `input[start..]`.
    input: Vec<u8>,
    start: usize,
    /// Whether the parser's last read consumed something (see [`Buffers::can_use_input`]).
    progress: bool,
    /// Room handed out by `input_append_buf` (the parser never asks for it).
    spare: Vec<u8>,
    state: State,
    /// The head's line being received, up to its `\n`.
    line: Vec<u8>,
    /// Bytes of the current head so far.
    head_bytes: usize,
    dropped: Arc<Dropped>,
}

impl Filtered {
    /// Takes what the connection received into `input`, filtering head lines.
    fn take(&mut self, raw: &[u8]) {
        let mut rest = raw;
        while !rest.is_empty() {
            if matches!(self.state, State::Body | State::Untouched) {
                self.input.extend_from_slice(rest);
                return;
            }
            let (part, tail, complete) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..=i], &rest[i + 1..], true),
                None => (rest, &[][..], false),
            };
            self.line.extend_from_slice(part);
            self.head_bytes += part.len();
            rest = tail;
            if complete {
                let line = std::mem::take(&mut self.line);
                self.head_line(&line);
            } else if self.head_bytes > MAX_RESPONSE_HEADERS {
                // Past the cap: the parser refuses it whole, as it would without this layer.
                self.input.append(&mut self.line);
                self.state = State::Body;
            }
        }
    }

    /// One complete line of a head, `\n` included.
    fn head_line(&mut self, line: &[u8]) {
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        match self.state {
            State::Awaiting => {
                // Empty lines before the status line are skipped by the parser.
                if !text.is_empty() {
                    let interim =
                        status_of(text).is_some_and(|s| (100..200).contains(&s) && s != 101);
                    self.state = State::Headers {
                        interim,
                        dropping: false,
                    };
                }
                self.input.extend_from_slice(line);
            }
            State::Headers { interim, dropping } => {
                if text.is_empty() {
                    self.input.extend_from_slice(line);
                    self.state = if interim {
                        State::Awaiting
                    } else {
                        State::Body
                    };
                    self.head_bytes = 0;
                    return;
                }
                let continuation = matches!(text[0], b' ' | b'\t');
                let why = if continuation {
                    // A folded line (obsolete in HTTP/1.1, refused by the parser).
                    (!dropping).then_some("a folded continuation line")
                } else {
                    malformed(text)
                };
                match why {
                    None if !(continuation && dropping) => {
                        self.input.extend_from_slice(line);
                        self.state = State::Headers {
                            interim,
                            dropping: false,
                        };
                    }
                    why => {
                        if let Some(why) = why {
                            self.dropped.note(why);
                        }
                        self.state = State::Headers {
                            interim,
                            dropping: true,
                        };
                    }
                }
            }
            State::Body | State::Untouched => self.input.extend_from_slice(line),
        }
    }
}

/// The status code of a status line (`HTTP/1.1 200 OK`), if it has one.
fn status_of(line: &[u8]) -> Option<u16> {
    let code = line.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Why a header line (without its line end) is not `token ":" value` with a value of visible
/// characters, spaces and tabs; `None` when it is well formed.
fn malformed(line: &[u8]) -> Option<&'static str> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Some("a line without a colon");
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return Some("a header name that is not a token");
    }
    let allowed = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    if !value.iter().all(|&b| allowed(b)) {
        return Some("a control character in a header value");
    }
    None
}

/// An RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Transport for Filtered {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        // A request goes out: what comes back next is a new answer. (A request is written whole
        // before its answer is read; an answer read to its end leaves the state at `Body`.)
        if self.state == State::Body {
            self.state = State::Awaiting;
            self.head_bytes = 0;
            self.line.clear();
        }
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let mut more = false;
        if self.inner.buffers().input().is_empty() {
            more = self.inner.await_input(timeout)?;
        }
        let raw = self.inner.buffers().input().to_vec();
        self.inner.buffers().input_consume(raw.len());
        if raw.is_empty() && !more && !self.line.is_empty() {
            // The connection ended inside a line: hand on what there is, for the parser to judge.
            self.input.append(&mut self.line);
        }
        self.take(&raw);
        Ok(more || !raw.is_empty())
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

impl Buffers for Filtered {
    fn output(&mut self) -> &mut [u8] {
        self.inner.buffers().output()
    }

    fn input(&self) -> &[u8] {
        &self.input[self.start..]
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.spare.resize(16 * 1024, 0);
        &mut self.spare
    }

    fn input_appended(&mut self, amount: usize) {
        let n = amount.min(self.spare.len());
        self.input.extend_from_slice(&self.spare[..n]);
    }

    fn input_consume(&mut self, amount: usize) {
        self.progress = amount > 0;
        self.start = (self.start + amount).min(self.input.len());
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.input.drain(..self.start);
            self.start = 0;
        }
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.inner.buffers().tmp_and_output()
    }

    fn can_use_input(&self) -> bool {
        !self.input().is_empty() && self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_judged_as_http_does() {
        assert_eq!(malformed(b"Content-Length: 12"), None);
        assert_eq!(malformed(b"X-Empty:"), None);
        assert_eq!(malformed(b"X-Tab:\ta\tb"), None);
        assert_eq!(malformed("X-Utf8: caf\u{e9}".as_bytes()), None);
        assert!(malformed(b"X-Odd: a\x01b").is_some());
        assert!(malformed(b"X-Odd: a\rb").is_some());
        assert!(malformed(b"X-Odd: a\x7f").is_some());
        assert!(malformed(b"no colon").is_some());
        assert!(malformed(b"X Odd: a").is_some());
        assert!(malformed(b": a").is_some());
        assert_eq!(status_of(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 100"), Some(100));
        assert_eq!(status_of(b"garbage"), None);
    }
}
