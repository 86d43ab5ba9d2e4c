//! Just enough HTTP/1.1 on a byte stream: request heads and bodies (Content-Length or chunked),
//! with bounds, and responses written by hand so that faults can break them anywhere.

use std::io::{self, BufRead, Read, Write};

/// The bound on a request's head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A request's line and headers.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (origin form; an absolute form loses its scheme and host).
    pub target: String,
    /// `target` without its query.
    pub path: String,
    /// The query, without `?`.
    pub query: Option<String>,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::judge::header_value(&self.headers, name)
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after the response: the default of HTTP/1.1 unless
    /// `Connection: close`, the opposite for HTTP/1.0.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version >= 1 {
            !self.header_has_token("connection", "close")
        } else {
            self.header_has_token("connection", "keep-alive")
        }
    }

    pub fn expects_continue(&self) -> bool {
        self.header_has_token("expect", "100-continue")
    }

    /// The value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// How a body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection between requests.
    Closed,
    /// The socket failed, timed out, or the peer closed it mid-request.
    Io,
    /// The request is malformed or too large: answer this status with this reason, then close.
    Refuse(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

fn refuse<T>(status: u16, why: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError::Refuse(status, why.into()))
}

/// Reads one line into `line`, counting it against `budget`; a line longer than the budget is
/// a 431.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read > *budget {
        return refuse(431, "Request header fields too large");
    }
    *budget -= read;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Io);
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(line)
}

/// Reads a request line and its headers, at most [`MAX_HEAD_BYTES`] in all.
pub fn read_head(reader: &mut impl BufRead) -> Result<RequestHead, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    if reader.fill_buf()?.is_empty() {
        return Err(ReadError::Closed);
    }
    // RFC 9112: a server ignores empty lines received before the request line.
    let request_line = loop {
        let line = read_line(reader, &mut budget)?;
        if !line.is_empty() {
            break line;
        }
    };
    let Ok(request_line) = String::from_utf8(request_line) else {
        return refuse(400, "Request line is not UTF-8");
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refuse(400, "Malformed request line");
    };
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return refuse(505, "HTTP version not supported"),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return refuse(400, "Malformed method");
    }
    let origin = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    };
    if !origin.starts_with('/') && origin != "*" {
        return refuse(400, "Malformed request target");
    }
    let (path, query) = match origin.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (origin.to_string(), None),
    };

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return refuse(400, "Obsolete header line folding");
        }
        let Ok(line) = String::from_utf8(line) else {
            return refuse(400, "Header is not UTF-8");
        };
        let Some((name, value)) = line.split_once(':') else {
            return refuse(400, "Header line without a colon");
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return refuse(400, "Malformed header name");
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(RequestHead {
        method: method.to_string(),
        target: origin.to_string(),
        path,
        query,
        minor_version,
        headers,
    })
}

/// How the body of `head` is framed, or the status refusing it.
pub fn framing(head: &RequestHead) -> Result<Framing, ReadError> {
    if let Some(te) = head.header("transfer-encoding") {
        if !te.trim().eq_ignore_ascii_case("chunked") {
            return refuse(501, format!("Unsupported Transfer-Encoding: {te}"));
        }
        if head.header("content-length").is_some() {
            return refuse(400, "Both Transfer-Encoding and Content-Length");
        }
        return Ok(Framing::Chunked);
    }
    let mut lengths = head
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str());
    let Some(first) = lengths.next() else {
        return Ok(Framing::Length(0));
    };
    if lengths.any(|other| other != first) {
        return refuse(400, "Conflicting Content-Length headers");
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(400, "Malformed Content-Length");
    }
    match first.parse() {
        Ok(n) => Ok(Framing::Length(n)),
        Err(_) => refuse(413, "Request body too large"),
    }
}

/// Reads a body framed as `framing`, refusing one longer than `limit` bytes with 413.
pub fn read_body(
    reader: &mut impl BufRead,
    framing: Framing,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    match framing {
        Framing::Length(n) if n > limit => refuse(413, "Request body too large"),
        Framing::Length(n) => {
            let mut body = vec![0; n];
            reader.read_exact(&mut body)?;
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader, limit),
    }
}

fn read_chunked(reader: &mut impl BufRead, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut budget = 1024;
        let line = read_line(reader, &mut budget).map_err(|e| match e {
            ReadError::Refuse(..) => ReadError::Refuse(400, "Chunk size line too long".into()),
            other => other,
        })?;
        let line = String::from_utf8_lossy(&line);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return refuse(400, "Malformed chunk size");
        };
        if size_text.is_empty() || size_text.starts_with('+') {
            return refuse(400, "Malformed chunk size");
        }
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > limit {
            return refuse(413, "Request body too large");
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return refuse(400, "Chunk not followed by CRLF");
        }
    }
    // Trailer fields, up to the empty line.
    let mut budget = MAX_HEAD_BYTES;
    while !read_line(reader, &mut budget)?.is_empty() {}
    Ok(body)
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Statuses whose responses carry neither a body nor a Content-Length.
pub fn is_bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// A response about to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Headers besides Content-Length, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `Content-Type: application/json`.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// Adds `name: value`, replacing every header of that name the response already has.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        crate::judge::header_value(&self.headers, name)
    }

    /// The status line and headers, Content-Length included (as `content_length` when given,
    /// else the body's length) unless the status is bodiless or a header already sets it.
    pub fn head_bytes(&self, content_length: Option<u64>) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !is_bodiless(self.status) && self.header("content-length").is_none() {
            let length = content_length.unwrap_or(self.body.len() as u64);
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole response as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = self.head_bytes(None);
        if !is_bodiless(self.status) {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.to_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn head(text: &str) -> Result<RequestHead, ReadError> {
        read_head(&mut BufReader::new(text.as_bytes()))
    }

    #[test]
    fn parses_a_head_and_its_query() {
        let h = head("\r\nPOST /OneCollector/1.0/?a=1&b HTTP/1.1\r\nX-ApiKey:  k \r\nConnection: Keep-Alive, TE\r\n\r\n")
            .unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/OneCollector/1.0/");
        assert_eq!(h.query_param("a"), Some("1"));
        assert_eq!(h.query_param("b"), Some(""));
        assert_eq!(h.header("x-apikey"), Some("k"));
        assert!(h.keep_alive());
        let h = head("GET http://127.0.0.1:1/x?y=2 HTTP/1.0\n\n").unwrap();
        assert_eq!((h.path.as_str(), h.keep_alive()), ("/x", false));
    }

    #[test]
    fn refuses_malformed_and_oversized_heads() {
        for bad in [
            "GET /\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        ] {
            assert!(matches!(head(bad), Err(ReadError::Refuse(..))), "{bad:?}");
        }
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(head(&big), Err(ReadError::Refuse(431, _))));
        assert!(matches!(head(""), Err(ReadError::Closed)));
        assert!(matches!(head("GET / HTTP/1.1\r\nX: 1"), Err(ReadError::Io)));
    }

    #[test]
    fn reads_chunked_bodies_with_a_limit() {
        let wire = "4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        let body = read_body(&mut BufReader::new(wire.as_bytes()), Framing::Chunked, 100).unwrap();
        assert_eq!(body, b"abcd0123456789");
        assert!(matches!(
            read_body(&mut BufReader::new(wire.as_bytes()), Framing::Chunked, 10),
            Err(ReadError::Refuse(413, _))
        ));
        assert!(matches!(
            read_body(
                &mut BufReader::new("zz\r\n".as_bytes()),
                Framing::Chunked,
                10
            ),
            Err(ReadError::Refuse(400, _))
        ));
    }

    #[test]
    fn bodiless_statuses_have_no_content_length() {
        let r = Response::json(204, "{}");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            !text.contains("Content-Length") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }
}
