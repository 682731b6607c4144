//! The command line: raw arguments (clap) kept apart from the validated
//! settings each command builds from them. Exit codes per DESIGN.md:
//! 0 ok, 1 the run failed or was aborted, 2 bad input, 3 a required service unreachable.

mod check;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_UNREACHABLE: i32 = 3;

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "A terminal console for database migration cutovers", long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a runbook and print its plan (exit 0 valid, 2 invalid).
    Check {
        /// The runbook file (TOML).
        runbook: PathBuf,
    },
}

/// Parse arguments, run the command, return the process exit code.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return code;
        }
    };
    match args.command {
        Command::Check { runbook } => check::run(&runbook),
    }
}
