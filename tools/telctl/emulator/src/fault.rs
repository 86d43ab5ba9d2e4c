//! Breaking a response on the wire, as a [`Fault`] says.
//!
//! Every fault ends the connection; a write that fails (the client gave up) ends it early.

use crate::http::Response;
use crate::script::Fault;
use crate::shared::Shared;
use std::io::{self, BufWriter, Write};
use std::net::{Shutdown, TcpStream};

/// Bytes of body [`Fault::HangMidBody`] sends before hanging, and the length it announces.
const MID_BODY_SENT: usize = 10;
const MID_BODY_ANNOUNCED: u64 = 1000;

/// How many bytes [`Fault::LyingContentLength`] announces beyond the body it sends.
const LIE_EXCESS: u64 = 100;

/// Delivers `response` broken by `fault`. `generation` is the release generation at the time
/// the request was recorded: a hang ends at the first release after it.
pub(crate) fn deliver(
    shared: &Shared,
    mut stream: &TcpStream,
    mut response: Response,
    fault: &Fault,
    generation: u64,
) {
    response.set_header("Connection", "close");
    let result = match fault {
        Fault::Reset => {
            reset_on_close(stream);
            Ok(())
        }
        Fault::HangBeforeHeaders => {
            shared.hang(generation);
            Ok(())
        }
        Fault::HangMidBody => hang_mid_body(shared, stream, &response, generation),
        Fault::TrickleHeaders(interval) => {
            for byte in response.to_bytes() {
                if stream.write_all(&[byte]).is_err() || !shared.pause(*interval) {
                    break;
                }
            }
            Ok(())
        }
        Fault::Garbage(bytes) => stream.write_all(bytes),
        Fault::ManyHeaders(count) => many_headers(stream, &response, *count),
        Fault::HugeBody(size) => huge_body(stream, &response, *size),
        Fault::LyingContentLength => {
            let lie = response.body.len() as u64 + LIE_EXCESS;
            stream
                .write_all(&response.head_bytes(Some(lie)))
                .and_then(|()| stream.write_all(&response.body))
        }
    };
    // The client may have gone; nothing to tell it then.
    let _ = result;
    if !matches!(fault, Fault::Reset) {
        let _ = stream.flush();
        let _ = stream.shutdown(Shutdown::Both);
    }
}

fn hang_mid_body(
    shared: &Shared,
    mut stream: &TcpStream,
    response: &Response,
    generation: u64,
) -> io::Result<()> {
    let mut partial: Vec<u8> = response.body.iter().copied().take(MID_BODY_SENT).collect();
    partial.resize(MID_BODY_SENT, b' ');
    stream.write_all(&response.head_bytes(Some(MID_BODY_ANNOUNCED)))?;
    stream.write_all(&partial)?;
    stream.flush()?;
    shared.hang(generation);
    Ok(())
}

fn many_headers(stream: &TcpStream, response: &Response, count: usize) -> io::Result<()> {
    let head = response.head_bytes(None);
    let status_line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a head has a status line")
        + 2;
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    out.write_all(&head[..status_line_end])?;
    for i in 0..count {
        write!(out, "X-Filler-{i}: {i}\r\n")?;
    }
    out.write_all(&head[status_line_end..])?;
    out.write_all(&response.body)?;
    out.flush()
}

/// A JSON object `{"acc":0,"pad":"xxx…"}` of exactly `size` bytes (spaces when too short for
/// one), streamed.
fn huge_body(stream: &TcpStream, response: &Response, size: usize) -> io::Result<()> {
    let (prefix, suffix): (&[u8], &[u8]) = (br#"{"acc":0,"pad":""#, br#""}"#);
    let (prefix, fill, suffix) = if size >= prefix.len() + suffix.len() {
        (prefix, b'x', suffix)
    } else {
        (&b""[..], b' ', &b""[..])
    };
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    out.write_all(&response.head_bytes(Some(size as u64)))?;
    out.write_all(prefix)?;
    let chunk = [fill; 64 * 1024];
    let mut left = size - prefix.len() - suffix.len();
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n])?;
        left -= n;
    }
    out.write_all(suffix)?;
    out.flush()
}

/// Makes the coming close of `stream` abortive (SO_LINGER 0): the peer gets a TCP RST
/// instead of a FIN. Elsewhere than Unix the connection is simply closed.
fn reset_on_close(stream: &TcpStream) {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the descriptor is open for the duration of the call, and the option value
        // is a properly sized, initialised `linger`.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(unix))]
    let _ = stream;
}
