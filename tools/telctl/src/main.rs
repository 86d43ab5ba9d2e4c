//! `telctl`: the command-line companion of onecollector-tel.
//!
//! Each subcommand lives in its own module; this file only parses and dispatches. Usage errors
//! exit with 2 everywhere; each subcommand's `--help` lists its other exit statuses.

mod audit;
mod cache;
mod demo;
mod live;
mod probe;
mod proxy;
mod send;
mod serve;
mod term;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "telctl",
    version,
    about = "Tools around the onecollector-tel telemetry client",
    after_help = "Colours on a terminal; NO_COLOR or CLICOLOR=0 turns them off, CLICOLOR_FORCE=1 \
on. No output shows a full instrumentation key: keys appear as <tenant>-***."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local OneCollector emulator that validates uploads as the real service does, and
    /// show every request and event it receives.
    Serve(serve::ServeArgs),
    /// Run a CONNECT proxy on loopback that counts its tunnels and can require credentials,
    /// for trying the library's proxy route.
    Proxy(proxy::ProxyArgs),
    /// Run the library against a local emulator and show what the collector receives:
    /// delivery, a retry, a cache replay and a kill window.
    Demo(demo::DemoArgs),
    /// Send a fixed matrix of small requests (real events) to a collector, one thing varied
    /// per row, and show how each is answered: why a tenant's telemetry is refused.
    #[command(after_help = probe::EXIT_HELP)]
    Probe(probe::ProbeArgs),
    /// Send one event through the library and say where it went: accepted, rejected and why,
    /// retried, cached, or killed until when.
    #[command(after_help = send::EXIT_HELP)]
    Send(send::SendArgs),
    /// Show or clear a tenant's on-disk cache of undelivered events and its kill window.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Show an audit file (the library's audit_path, or TEL_AUDIT): one line per event the
    /// collector answered, with its time, outcome, HTTP status, name and data as sent.
    #[command(after_help = audit::EXIT_HELP)]
    Audit(audit::AuditArgs),
}

/// The command line, with the probe matrix (generated from the rows themselves) in
/// `telctl probe --help`.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("probe", |probe| {
        probe.after_long_help(format!(
            "It sends real events to the tenant of the key. It stops at the first answer whose \
kill-tokens name the tenant, records that window where the library honours it, and does not \
start inside one.\n\n{}\n{}",
            probe::matrix_help(),
            probe::EXIT_HELP
        ))
    })
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Send(args) => send::run(args),
        Command::Cache(command) => cache::run(command),
        Command::Audit(args) => audit::run(args),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
