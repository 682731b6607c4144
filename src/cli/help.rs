//! What `--help` says beyond the flags: the exit codes, the environment variables ferry
//! reads, and where its log file is; and the `completions` and `man` commands, which
//! generate shell completions (clap_complete) and man pages (clap_mangen) from the same
//! clap definition, so they never drift from the real flags.

use super::{Args, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE};
use clap::CommandFactory;
use std::path::Path;

/// The version line: the package version and the commit it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FERRY_GIT_COMMIT"),
    ")"
);

/// The text after `--help`'s options: exit codes, environment, the log file.
pub fn footer(log: &Path) -> String {
    format!(
        "\
Exit codes:
  {EXIT_OK}  success (check: the runbook is valid)
  {EXIT_FAILED}  the run failed or was aborted
  {EXIT_BAD_INPUT}  bad input: an invalid runbook, flag or journal
  {EXIT_UNREACHABLE}  a required service (database, AWS) could not be reached

Environment:
  FERRY_LOG          log filter, a tracing directive (default `info`; `debug` says more)
  FERRY_LOG_MAX_MB   the log rotates to ferry.log.1 past this size (default 10)
  XDG_STATE_HOME     state directory (default ~/.local/state): logs, demo folders
  NO_COLOR           any value: no colour in the console
  FERRY_PG_BIN       PostgreSQL server binaries for `demo --postgres`
  PGSSLMODE, PGSSLROOTCERT
                     libpq's TLS defaults for postgres:// connections (a runbook's `tls`
                     and `ca`, or a stronger URL sslmode, take precedence)
  AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID, ...
                     the AWS SDK's usual settings, for rds steps and IAM auth
  and the variables a runbook names as ${{env:NAME}} (database URLs, tokens)

Log file:
  {}
  (secrets are redacted; at most two files of FERRY_LOG_MAX_MB each)",
        log.join("ferry.log").display()
    )
}

/// `ferry completions SHELL`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Args::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "ferry", &mut out);
    EXIT_OK
}

/// `ferry man [--dir DIR]`: ferry(1) on stdout, or one page per command into DIR
/// (`ferry.1`, `ferry-run.1`, ...).
pub fn man(dir: Option<&Path>) -> i32 {
    let cmd = Args::command()
        .version(VERSION)
        .after_long_help(footer(Path::new("$XDG_STATE_HOME/ferry")));
    match dir {
        None => {
            let mut out = std::io::stdout().lock();
            match clap_mangen::Man::new(cmd).render(&mut out) {
                Ok(()) => EXIT_OK,
                Err(e) => {
                    complain!("error: cannot write the man page: {e}");
                    EXIT_FAILED
                }
            }
        }
        Some(d) => {
            if let Err(e) = std::fs::create_dir_all(d) {
                complain!("error: cannot create {}: {e}", d.display());
                return EXIT_BAD_INPUT;
            }
            match clap_mangen::generate_to(cmd, d) {
                Ok(()) => {
                    complain!("wrote man pages to {}", d.display());
                    EXIT_OK
                }
                Err(e) => {
                    complain!("error: cannot write man pages to {}: {e}", d.display());
                    EXIT_FAILED
                }
            }
        }
    }
}
