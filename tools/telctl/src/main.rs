//! `telctl`: the command-line companion of onecollector-tel.
//!
//! Each subcommand lives in its own module; this file only parses and dispatches.

mod demo;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "telctl",
    version,
    about = "Tools around the onecollector-tel telemetry client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local OneCollector emulator that validates uploads as the real service does.
    Serve(serve::ServeArgs),
    /// Run the library against a local emulator and show what the collector receives:
    /// delivery, a retry, a cache replay and a kill window.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
    }
}
