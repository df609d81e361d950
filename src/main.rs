//! The `switchyard` binary: parse the command line, set up logging, run, and map the
//! outcome to an exit code (0 ok, 2 bad usage or config, 1 any other failure).

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
            let usage = err.chain().any(|e| {
                e.downcast_ref::<UsageError>().is_some()
                    || matches!(e.downcast_ref::<LoadError>(), Some(LoadError::Invalid(_)))
            });
            eprintln!("error: {err:#}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
