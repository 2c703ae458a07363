//! The `responder` binary: parses the command line, loads the configuration, serves, and turns
//! the outcome into the documented exit status.
#![deny(unsafe_code)]

use std::process::ExitCode;

use responder::config::{Cli, Command, Config, LogLevel};
use responder::serve::memory;
use responder::serve::supervisor::{self, Outcome};
use responder::{healthcheck, log};

/// Exit statuses, documented in README.md. `healthcheck` exits 1 when the probe fails.
const EXIT_RUNTIME_ERROR: u8 = 1;
const EXIT_CONFIG_ERROR: u8 = 2;
const EXIT_FORCED_SHUTDOWN: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("responder: {e}");
            return ExitCode::from(EXIT_CONFIG_ERROR);
        }
    };
    if cli.command == Some(Command::Healthcheck) {
        return match healthcheck::check(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("responder healthcheck: {e}");
                ExitCode::from(EXIT_RUNTIME_ERROR)
            }
        };
    }
    if cli.check {
        // The certificate, key and CA files are read as a start would read them.
        #[cfg(feature = "tls")]
        if !config.tls_listen.is_empty() {
            let loaded = responder::tls::Shared::new()
                .and_then(|shared| responder::tls::Tls::load(&config.tls, &shared));
            if let Err(e) = loaded {
                eprintln!("responder: {e}");
                return ExitCode::from(EXIT_CONFIG_ERROR);
            }
        }
        let origin = cli.config.as_ref().map_or_else(
            || "embedded defaults".to_string(),
            |p| p.display().to_string(),
        );
        println!("responder: {origin}: configuration OK");
        return ExitCode::SUCCESS;
    }
    memory::fix_thresholds();
    let (_log_guard, dropped_log_lines) =
        log::init(config.log_format, cli.log_level.map(LogLevel::directive));
    match supervisor::run(&config, &|| Config::load(&cli), dropped_log_lines) {
        Ok(Outcome::Drained) => ExitCode::SUCCESS,
        Ok(Outcome::Forced { .. }) => ExitCode::from(EXIT_FORCED_SHUTDOWN),
        Err(e @ supervisor::ServerError::Tls(_)) => {
            eprintln!("responder: {e}");
            ExitCode::from(EXIT_CONFIG_ERROR)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serve");
            eprintln!("responder: {e}");
            ExitCode::from(EXIT_RUNTIME_ERROR)
        }
    }
}
