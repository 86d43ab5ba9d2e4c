//! What a request came back with: the collector's response as the transport read it, or why
//! there was none. The policy reads these (`policy::answer`); the transport makes them.

/// Most of a response body that is read; the rest is left unread (and the connection closed).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Most header bytes accepted before the response is treated as garbage.
pub const MAX_RESPONSE_HEADERS: usize = 64 * 1024;

/// A response as the transport read it (headers lowercased, body capped).
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The collector's reason (`Collector-Error`), if it gave one.
    pub fn collector_error(&self) -> Option<&str> {
        self.header("collector-error")
    }

    /// The first 200 bytes of the body, newlines flattened, for the debug line.
    pub fn body_excerpt(&self) -> String {
        let cut = &self.body[..self.body.len().min(200)];
        String::from_utf8_lossy(cut)
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect()
    }
}

/// Why a request produced no HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError(pub String);
