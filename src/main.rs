//! The `switchyard` binary: parse the command line, set up logging, run, and map the
//! outcome to an exit code (0 ok, 2 bad usage or a missing or invalid config, 1 any
//! other failure).

use std::process::ExitCode;

use clap::Parser;
use switchyard::cli::{self, Cli, LogFormat, UsageError};
use switchyard::config::LoadError;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never in files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A config that is missing or wrong is the caller's to fix: 2, like bad usage.
            let usage = err.chain().any(|e| e.downcast_ref::<UsageError>().is_some() || e.is::<LoadError>());
            match err.downcast_ref::<LoadError>() {
                // Its lines are located diagnostics, each already saying "error:".
                Some(invalid @ LoadError::Invalid(_)) => eprintln!("{invalid}"),
                _ => eprintln!("error: {err:#}"),
            }
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
