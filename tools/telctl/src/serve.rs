//! `telctl serve`: the emulator as a process, for tests in other languages and for trying the
//! library by hand.
//!
//! The first line on stdout is always `listening on <endpoint>`, flushed at once, so that a
//! harness can read the port from it. Then, unless `--quiet`, the live view of [`crate::live`]:
//! one line per request, one per event in it, and a running summary.
//!
//! It runs until SIGINT (Ctrl-C) or SIGTERM, or until standard input closes with
//! `--exit-on-stdin-eof`, and then exits 0. After a signal the last line (unless `--quiet`)
//! says what it received. Either way the CA file it wrote for `--tls` in the temporary folder
//! is removed (a `--ca-file` the caller named stays).

use crate::live::LiveView;
use crate::term::Out;
use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use tel_emulator::{Collector, Options, RecordedRequest};

#[derive(Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Accept only this instrumentation key (repeatable); any well-formed key when absent.
    #[arg(long = "ikey", value_name = "KEY")]
    ikeys: Vec<String>,
    /// Append every accepted envelope to FILE as NDJSON: exactly the lines accepted, nothing
    /// of what was refused.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Largest request body once decompressed; larger ones are answered 413.
    #[arg(long, value_name = "N")]
    max_body_bytes: Option<usize>,
    /// Print only the `listening on` line (no live view).
    #[arg(long)]
    quiet: bool,
    /// Keep only counts, not the requests and envelopes (the control API's `accepted` and
    /// `requests` stay empty): for benchmarks and long runs. Implies `--quiet`.
    #[arg(long)]
    count_only: bool,
    /// A sink, not a collector: answer every upload 200 `{}` without decoding or checking
    /// it, counting requests only (for measuring a client's own limit). Implies `--count-only`.
    #[arg(long)]
    sink: bool,
    /// Play a far collector: a round-trip time of N ms for each new connection, each TLS
    /// handshake flight and each answer to an upload.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rtt_ms: u64,
    /// Exit when standard input reaches end of file (when the harness that started us dies).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Serve HTTPS with a server certificate for 127.0.0.1 and localhost signed by a CA made
    /// at start; the second stdout line is `ca file: PATH`, the CA as PEM (for SSL_CERT_FILE).
    #[arg(long)]
    tls: bool,
    /// With --tls: another name the certificate is valid for (repeatable), e.g. the host name
    /// a client reaches the emulator by through a proxy.
    #[arg(long = "tls-name", value_name = "HOST", requires = "tls")]
    tls_names: Vec<String>,
    /// With --tls: where to write the CA (default: a file in the temporary folder, named after
    /// the process id, removed when serve ends).
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_file: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let defaults = Options::default();
    let options = Options {
        api_keys: (!args.ikeys.is_empty()).then_some(args.ikeys),
        max_body_bytes: args.max_body_bytes.unwrap_or(defaults.max_body_bytes),
        port: args.port,
        record: args.record,
        keep_records: !(args.count_only || args.sink),
        sink: args.sink,
        rtt: std::time::Duration::from_millis(args.rtt_ms),
        tls: args.tls,
        tls_names: args.tls_names,
        ..defaults
    };
    let quiet = args.quiet || args.count_only || args.sink;
    let collector = match Collector::start_with(options) {
        Ok(collector) => collector,
        Err(e) => {
            eprintln!("telctl serve: cannot start the emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (events, seen) = mpsc::channel();
    if !quiet {
        let on_request = events.clone();
        collector.on_request(move |request| {
            let _ = on_request.send(Seen::Request(Box::new(request.clone())));
        });
    }
    // Before the CA file is written: a signal from now on still removes it.
    let on_signal = events.clone();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = on_signal.send(Seen::Signal);
    }) {
        eprintln!("telctl serve: cannot handle SIGINT and SIGTERM: {e}");
        return ExitCode::FAILURE;
    }
    let own_ca_file = args.ca_file.is_none();
    let ca_file = match collector.tls_ca_pem() {
        Some(pem) => {
            let path = args.ca_file.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("telctl-serve-{}-ca.pem", std::process::id()))
            });
            if let Err(e) = std::fs::write(&path, pem) {
                eprintln!(
                    "telctl serve: cannot write the CA to {}: {e}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
            Some(path)
        }
        None => None,
    };
    // Removes the CA file however `run` returns from here on.
    let _ca_file_guard = RemoveOnDrop(ca_file.clone().filter(|_| own_ca_file));
    {
        let mut out = io::stdout().lock();
        let mut head = format!("listening on {}\n", collector.endpoint());
        if let Some(path) = &ca_file {
            head.push_str(&format!("ca file: {}\n", path.display()));
        }
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    if args.exit_on_stdin_eof {
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            let _ = events.send(Seen::StdinClosed);
        });
    }
    // Runs until a signal, or until stdin closes with --exit-on-stdin-eof. A request recorded
    // before that is printed before the exit: the hook queues it first.
    // A closed stdout does not stop the collector (`Out` ignores write errors): harnesses often
    // stop reading.
    let mut view = LiveView::new(Out::stdout());
    let mut interrupted = false;
    for event in seen {
        match event {
            Seen::Request(request) if !quiet => view.show(&request),
            Seen::Request(_) => {}
            Seen::StdinClosed => break,
            Seen::Signal => {
                interrupted = true;
                break;
            }
        }
    }
    view.finish();
    // A person's Ctrl-C gets a word of what came in; a harness closing stdin has its own count.
    if interrupted && !quiet {
        Out::stdout().line(&format!(
            "telctl serve: interrupted; {}",
            summary(collector.request_count(), collector.accepted_count())
        ));
    }
    ExitCode::SUCCESS
}

enum Seen {
    Request(Box<RecordedRequest>),
    StdinClosed,
    /// SIGINT or SIGTERM.
    Signal,
}

/// What the collector received, for the last line.
fn summary(requests: usize, accepted: usize) -> String {
    format!(
        "received {}, accepted {}",
        crate::term::plural(requests as u64, "request", "requests"),
        crate::term::plural(accepted as u64, "event", "events")
    )
}

/// Deletes the file it names when dropped.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
