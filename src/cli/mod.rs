//! The command line: raw arguments (clap) kept apart from the validated
//! settings each command builds from them. Exit codes per DESIGN.md:
//! 0 ok, 1 the run failed or was aborted, 2 bad input, 3 a required service unreachable.

mod attach;
mod check;
mod check_aws;
mod check_json;
mod check_live;
mod demo;
mod demo_pg;
mod help;

pub mod logging;
mod report;
pub mod run;
mod serve;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_UNREACHABLE: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = help::VERSION,
    about = "A terminal console for database migration cutovers",
    long_about = None,
    after_help = "New here? `ferry demo` walks a whole cutover on SQLite, no server needed.\n\
                  Then: `ferry check RUNBOOK`, `ferry run RUNBOOK`, `ferry report JOURNAL`."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a runbook: the full-screen console on a TTY, or line-per-event headless mode.
    Run(RunArgs),
    /// Validate a runbook and print its plan (exit 0 valid, 2 invalid).
    Check {
        /// The runbook file (TOML).
        runbook: PathBuf,
        /// Also ask AWS (DescribeDBInstances) about every instance the runbook names.
        #[arg(long, conflicts_with = "format")]
        aws: bool,
        /// Also connect to the databases and run, read-only, the checks of every
        /// `replicate` start and caught-up proof (changes nothing).
        #[arg(long, conflicts_with = "format")]
        live: bool,
        /// text, or json (assets/check.schema.json) for scripts.
        #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
        format: Option<String>,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// The embedded demo: seed an SQLite dating app and run runbooks/demo.toml against it.
    Demo {
        /// Rows to seed across users, profiles, matches and messages.
        #[arg(long, default_value_t = crate::demo::DEFAULT_ROWS)]
        rows: u64,
        /// Working folder (default: a fresh one under the state directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Resume the unfinished run in --dir (default: the newest demo folder) instead of
        /// seeding a new one: after a crash, a kill or a closed console.
        #[arg(long, conflicts_with = "rows")]
        resume: bool,
        /// Do not run the background app writer.
        #[arg(long)]
        no_traffic: bool,
        /// One line per event on stdout instead of the full-screen console.
        #[arg(long)]
        headless: bool,
        /// Confirm every step automatically (implies headless).
        #[arg(long)]
        yes: bool,
        /// Operator name recorded with every confirmation (default: the OS user).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
        /// Play the demo on throwaway PostgreSQL clusters (a primary, a streaming standby
        /// and a target, stopped and removed when the demo ends) instead of SQLite files.
        /// Needs the PostgreSQL server binaries (FERRY_PG_BIN, /usr/lib/postgresql/*/bin
        /// or pg_config); cannot be resumed.
        #[arg(long)]
        postgres: bool,
    },
    /// The post-run report of a journal: Markdown (default), HTML or JSON.
    Report {
        /// The journal (runs/<runbook>/<time>.jsonl).
        journal: PathBuf,
        /// md, html or json.
        #[arg(long, default_value = "md", value_parser = report::parse_format)]
        format: ferry_core::report::Format,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Join a running console from another terminal: read-only unless --operate.
    Attach(AttachArgs),
    /// Rehearsal timing over several journals: n, median, p90, max, 95% interval, against the window.
    Stats {
        #[arg(required = true, value_name = "JOURNAL")]
        journals: Vec<PathBuf>,
        /// text, or json (assets/stats.schema.json) for scripts.
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Print a shell completion script: `ferry completions bash > /etc/bash_completion.d/ferry`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page ferry(1), or write one page per command into --dir.
    Man {
        /// Write ferry.1, ferry-run.1, ... into DIR instead of printing ferry(1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The runbook file (TOML).
    pub runbook: PathBuf,
    /// Journal file (default: runs/<runbook-name>/<UTC timestamp>.jsonl).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Continue an unfinished run from its journal (default: the newest unfinished one).
    #[arg(long)]
    pub resume: bool,
    /// On --resume, continue even though steps changed since the journal began.
    #[arg(long, requires = "resume")]
    pub accept_changes: bool,
    /// Operator name recorded with every confirmation (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// One line per event on stdout instead of the full-screen console.
    #[arg(long)]
    pub headless: bool,
    /// Rehearsal: confirm every step automatically (journaled as automatic); on --resume, retry interrupted steps.
    #[arg(long)]
    pub yes: bool,
    /// Folder holding runs/<runbook-name>/ journals (default: ./runs).
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Serve `ferry attach` at this socket (default: the journal's path + `.sock`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Headless: wait at steps that need a person for an operator to attach
    /// (`ferry attach --operate`) instead of stopping.
    #[arg(long, conflicts_with = "yes")]
    pub wait: bool,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Journals of earlier runs of this runbook (a glob, e.g. 'runs/cutover/*.jsonl'):
    /// per-step ETAs, the projected end and the rollback budget. Wins over
    /// `rehearsals` in [runbook].
    #[arg(long, value_name = "GLOB")]
    pub rehearsals: Option<String>,
}

/// `--var KEY=VALUE` and `--vars FILE`: values overriding the runbook's `[vars]`.
#[derive(Debug, Clone, clap::Args)]
pub struct VarArgs {
    /// Override one of the runbook's [vars] (repeatable; wins over --vars).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub var: Vec<String>,
    /// A TOML file of `name = "value"` lines overriding the runbook's [vars].
    #[arg(long = "vars", value_name = "FILE.toml")]
    pub vars_file: Option<PathBuf>,
}

impl VarArgs {
    /// The validated overrides, or the exit code after saying what is wrong.
    fn overrides(&self) -> Result<ferry_core::runbook::vars::Overrides, i32> {
        ferry_core::runbook::vars::Overrides::from_args(self.vars_file.as_deref(), &self.var)
            .map_err(|e| {
                complain_raw!("{e}");
                EXIT_BAD_INPUT
            })
    }
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Join the newest live run of this runbook (default: the newest live run under --runs-dir).
    pub runbook: Option<PathBuf>,
    /// The run's socket, as `ferry run` printed it.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["journal", "runbook"])]
    pub socket: Option<PathBuf>,
    /// Join the run writing this journal.
    #[arg(long, value_name = "PATH", conflicts_with = "runbook")]
    pub journal: Option<PathBuf>,
    /// Act too: confirm, skip, retry and roll back steps (journaled under --operator).
    #[arg(long)]
    pub operate: bool,
    /// Operator name recorded with what you do (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Folder holding runs/<runbook-name>/ journals (default: ./runs, then runs/ beside RUNBOOK).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
}

/// Parse arguments, run the command, return the process exit code.
pub fn main() -> i32 {
    // --help ends with the exit codes, the environment and where the log is
    let cmd = Args::command().after_long_help(format!(
        "New here? `ferry demo` walks a whole cutover on SQLite, no server needed.\n\
         Then: `ferry check RUNBOOK`, `ferry run RUNBOOK`, `ferry report JOURNAL`.\n\n{}",
        help::footer(&logging::state_dir())
    ));
    let parsed = cmd
        .try_get_matches()
        .and_then(|m| Args::from_arg_matches(&m));
    let args = match parsed {
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
    if matches!(
        args.command,
        Command::Run(_) | Command::Demo { .. } | Command::Attach(_)
    ) {
        let _ = logging::init(&logging::state_dir());
    }
    match args.command {
        Command::Check {
            runbook,
            format: Some(f),
            vars,
            ..
        } if f == "json" => match vars.overrides() {
            Ok(v) => check_json::run(&runbook, &v),
            Err(code) => code,
        },
        Command::Check {
            runbook,
            aws,
            live,
            vars,
            ..
        } => match vars.overrides() {
            Ok(v) => check_command(&runbook, aws, live, &v),
            Err(code) => code,
        },
        Command::Report {
            journal,
            format,
            output,
        } => report::report(&journal, format, output.as_ref()),
        Command::Stats { journals, format } => report::stats(&journals, format == "json"),
        Command::Completions { shell } => help::completions(shell),
        Command::Man { dir } => help::man(dir.as_deref()),
        Command::Attach(a) => attach::main(a),
        Command::Demo {
            rows,
            dir,
            resume,
            no_traffic,
            headless,
            yes,
            operator,
            postgres,
        } => {
            if postgres && resume {
                complain!("error: {}", demo_pg::NO_RESUME);
                return EXIT_BAD_INPUT;
            }
            let rows = match demo::check_rows(rows) {
                Ok(r) => r,
                Err(code) => return code,
            };
            let operator = match operator_named(operator) {
                Ok(o) => o,
                Err(code) => return code,
            };
            let settings = demo::DemoSettings {
                rows,
                dir,
                resume,
                traffic: !no_traffic,
                yes,
                operator,
                tui: console_wanted(headless, yes),
            };
            demo_command(settings, postgres)
        }
        Command::Run(a) => run_command(a),
    }
}

/// `ferry check RUNBOOK [--aws] [--live]`: the plan, then (with `--aws`) the AWS
/// checks and (with `--live`) the database checks of the online steps.
fn check_command(
    runbook: &std::path::Path,
    aws: bool,
    live: bool,
    vars: &ferry_core::runbook::vars::Overrides,
) -> i32 {
    let code = check::run(runbook, vars);
    if code != EXIT_OK || !(aws || live) {
        return code;
    }
    let Ok(rb) = ferry_core::runbook::load_with(runbook, &vars.values()) else {
        return EXIT_BAD_INPUT;
    };
    let mut code = EXIT_OK;
    if aws {
        code = block_on(false, check_aws::run(&rb));
    }
    if live {
        let live_code = block_on(false, check_live::run(&rb));
        if code == EXIT_OK {
            code = live_code;
        }
    }
    code
}

/// `ferry demo`: the scripted run, or (`--postgres`) the one on real PostgreSQL.
fn demo_command(settings: demo::DemoSettings, postgres: bool) -> i32 {
    if postgres {
        let prepared = match demo_pg::prepare(&settings) {
            Ok(p) => p,
            Err((code, e)) => {
                complain!("error: {e}");
                return code;
            }
        };
        return block_on(true, demo_pg::run(settings, prepared));
    }
    let dir = match demo::prepare(&settings) {
        Ok(d) => d,
        Err(e) => {
            complain!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    block_on(true, demo::run(settings, dir))
}

/// `ferry run RUNBOOK`.
fn run_command(a: RunArgs) -> i32 {
    let operator = match operator_named(a.operator) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let vars = match a.vars.overrides() {
        Ok(v) => v,
        Err(code) => return code,
    };
    let settings = run::RunSettings {
        vars,
        rehearsals: a.rehearsals,
        runbook: a.runbook,
        journal: a.journal,
        resume: a.resume,
        accept_changes: a.accept_changes,
        operator,
        yes: a.yes,
        runs_dir: a.runs_dir,
        tui: console_wanted(a.headless, a.yes),
        socket: a.socket,
        wait: a.wait,
        resume_cmd: None,
        no_resume: None,
    };
    block_on(true, run::run(settings))
}

/// The operator given with `--operator` (not blank), or the OS user.
fn operator_named(given: Option<String>) -> Result<String, i32> {
    match given {
        Some(o) if o.trim().is_empty() => {
            complain!("error: --operator needs a name");
            Err(EXIT_BAD_INPUT)
        }
        Some(o) => Ok(o),
        None => Ok(run::default_operator()),
    }
}

/// Whether to open the full-screen console: it needs a terminal, and `--yes`
/// (a rehearsal) always runs headless.
fn console_wanted(headless: bool, yes: bool) -> bool {
    !headless && !yes && {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal()
    }
}

/// Run `fut` to its exit code on a new tokio runtime (multi-threaded or not).
fn block_on(multi_thread: bool, fut: impl std::future::Future<Output = i32>) -> i32 {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match builder.enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            complain!("error: cannot start the async runtime: {e}");
            EXIT_FAILED
        }
    }
}
