//! The `hostel` binary: parses the command line, wires the service to the real engine, store and
//! storage, runs one command, prints its result, and exits with the documented code.
//!
//! Start reading at [`cli::Command`]; each command is a thin function in `commands` that turns
//! flags into core types, calls one service function and renders the answer.

mod backend;
mod bench;
mod cli;
mod client;
mod commands;
mod error;
mod output;
mod selftest;
mod serve;
mod settings;
mod wiring;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            e.print();
            e.exit_code()
        }
    };
    // A pending read of the terminal (exec's stdin) would hold the runtime's shutdown.
    runtime.shutdown_background();
    ExitCode::from(code)
}

fn init_tracing(cli: &cli::Cli) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HOSTEL_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == cli::LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}
