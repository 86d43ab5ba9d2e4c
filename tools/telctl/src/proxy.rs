//! `telctl proxy`: the emulator's CONNECT proxy as a process. The first stdout line is
//! `listening on http://127.0.0.1:PORT`; then a line of counts when they change (checked five
//! times a second), and a last one when it exits (standard input closed, with
//! `--exit-on-stdin-eof`): `connections=N tunnels=N auth_refused=N refused=N last_target=H:P`.

use clap::Args;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tel_emulator::{ConnectProxy, ProxyOptions};

#[derive(Args)]
pub struct ProxyArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Require these Basic credentials, `user:password` (others are answered 407).
    #[arg(long, value_name = "USER:PASSWORD")]
    credentials: Option<String>,
    /// Send CONNECTs for HOST to ADDRESS instead of resolving it (repeatable), e.g.
    /// `collector.test=127.0.0.1:4443`.
    #[arg(long = "host", value_name = "HOST=ADDRESS")]
    hosts: Vec<String>,
    /// Exit when standard input reaches end of file (when the harness that started us dies).
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

pub fn run(args: ProxyArgs) -> ExitCode {
    let mut hosts = Vec::new();
    for entry in &args.hosts {
        let parsed = entry
            .split_once('=')
            .and_then(|(h, a)| Some((h.to_owned(), a.parse::<SocketAddr>().ok()?)));
        match parsed {
            Some(pair) => hosts.push(pair),
            None => {
                eprintln!("telctl proxy: --host {entry:?} is not HOST=IP:PORT");
                return ExitCode::from(2);
            }
        }
    }
    let credentials = match args.credentials.as_deref().map(|c| c.split_once(':')) {
        None => None,
        Some(Some((u, p))) => Some((u.to_owned(), p.to_owned())),
        Some(None) => {
            eprintln!("telctl proxy: --credentials must be USER:PASSWORD");
            return ExitCode::from(2);
        }
    };
    let proxy = match ConnectProxy::start(ProxyOptions {
        port: args.port,
        credentials,
        hosts,
    }) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("telctl proxy: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = io::stdout();
    if writeln!(out, "listening on {}", proxy.url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    if args.exit_on_stdin_eof {
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            let _ = stop.send(());
        });
    } else {
        std::mem::forget(stop);
    }
    let report = |out: &mut io::Stdout| {
        let now = proxy.counts();
        let _ = writeln!(
            out,
            "connections={} tunnels={} auth_refused={} refused={} last_target={}",
            now.connections,
            now.tunnels,
            now.auth_refused,
            now.refused,
            proxy.targets().last().map_or("-", String::as_str)
        );
        let _ = out.flush();
        now
    };
    let mut last = proxy.counts();
    loop {
        if stopped.recv_timeout(Duration::from_millis(200)).is_ok() {
            report(&mut out);
            return ExitCode::SUCCESS;
        }
        if proxy.counts() != last {
            last = report(&mut out);
        }
    }
}
