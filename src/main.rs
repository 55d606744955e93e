//! The command line. Everything it runs lives in the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tiktok_webhook::{cli, config::Settings};

/// Receives TikTok Shop webhooks: verifies them, keeps each exactly once,
/// projects orders, and serves a REST API.
#[derive(Parser)]
#[command(name = "tiktok-webhook", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the Authorization value for the raw bytes of FILE (`-` for stdin).
    Sign { file: String },
    /// POST FILE, signed, to the running server and print status and body.
    Send {
        file: String,
        /// Where to send (default: http://HOST:PORT/webhook/tiktok).
        #[arg(long)]
        url: Option<String>,
        /// Send the bytes unchanged (by default the envelope `timestamp` is set to now).
        #[arg(long)]
        as_is: bool,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match command {
        Command::Serve => cli::serve(settings).await,
        Command::Migrate => cli::migrate(settings).await,
        Command::Sign { file } => cli::sign_file(&settings, &file),
        Command::Send { file, url, as_is } => cli::send(&settings, &file, url, as_is).await,
        Command::CheckConfig => {
            cli::check_config(&settings);
            Ok(())
        }
    }
}

/// The error and its causes on one line.
fn one_line(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
