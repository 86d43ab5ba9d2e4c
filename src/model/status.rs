//! Status codes of the C ABI and the error type that carries them.

use std::fmt;

/// The status every `tel_*` function returns (abi.md, "Status codes").
///
/// The numbers are part of the ABI: never renumber, only append.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success; also an event dropped by opt-out or by a kill window.
    Ok = 0,
    /// A required pointer is NULL, or a string is not valid UTF-8.
    InvalidArgument = 1,
    /// `tel_init` rejected the configuration.
    InvalidConfig = 2,
    /// `tel_log` rejected the event.
    InvalidEvent = 3,
    /// Called before `tel_init` or after `tel_shutdown`.
    NotInitialized = 4,
    /// `tel_init` while a session is live.
    AlreadyInitialized = 5,
    /// The in-memory queue is full; the event was dropped and counted.
    QueueFull = 6,
    /// `tel_flush`/`tel_shutdown` hit its deadline.
    Timeout = 7,
    /// An unexpected failure, including a caught panic.
    Internal = 8,
    /// A critical event was queued and will be sent, but not written to the cache file.
    NotDurable = 9,
}

/// A failed call: the status the ABI returns and a sentence a user can act on.
///
/// Every message is made by [`Error::new`], which is the one place where the keys of the live
/// sessions are redacted from it: a message that quotes a caller's text (an event name, an
/// option key, an `ext` name, a value) never carries a key, nor a key cut short by an
/// [`excerpt`], whether it reaches `tel_last_error` or a user of the Rust API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: crate::sys::log::redact(&message.into()),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(Status::InvalidConfig, message)
    }
    pub fn event(message: impl Into<String>) -> Self {
        Error::new(Status::InvalidEvent, message)
    }
    pub fn argument(message: impl Into<String>) -> Self {
        Error::new(Status::InvalidArgument, message)
    }
    pub fn not_initialized() -> Self {
        Error::new(
            Status::NotInitialized,
            "no telemetry session is live: call tel_init first",
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Caller-supplied text as it may appear in a message: at most 64 characters, so that an error
/// never repeats a 100 MB argument.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}... ({} bytes)", text.len())
}
