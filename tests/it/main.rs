//! ferry's integration tests, in one test binary so the crate, sqlx and the AWS SDK are
//! linked once rather than once per file. Each module is one area's tests (run its tests
//! alone with `cargo nextest run -E 'test(/^MODULE::/)'`); `support` holds the helpers
//! they share (the rig's PostgreSQL, headless runs, tmux).
//!
//! Tests that need the rig (`scripts/test`) fail, never skip, without it. Tests do not
//! change the process's environment, so they can share one process under `cargo test`
//! as well as run one per process under nextest.

mod support;

mod attach;
mod attach_tmux;
mod aws_errors;
mod aws_moto;
mod caught_up;
mod check_json;
mod cli_check;
mod cli_conventions;
mod cloudwatch_moto;
mod copy_kill;
mod copy_pg;
mod copy_plan_pg;
mod copy_schema;
mod copy_sqlite;
mod copy_throttle_live;
mod demo;
mod demo_pg;
mod dms_monitor;
mod dms_moto;
mod evidence_tmux;
mod exec_pg;
mod exec_shell;
mod monitor_pg;
mod monitor_standby;
mod mysql_copy;
mod mysql_exec;
mod mysql_preflight;
mod mysql_verify;
mod operators_os;
mod rehearsal;
mod rehearsal_eta;
mod rehearsal_tmux;
mod replicate_pg;
mod replication_watch;
mod report_chromium;
mod report_golden;
mod report_inputs;
mod rig;
mod run_edge;
mod run_headless;
mod run_pg;
mod run_resume;
mod run_vars;
mod seed_cdc_sync;
mod seed_copy_and_verify;
mod seed_dual_write;
mod seed_replica_promotion;
mod seed_self_hosted;
mod stats_json;
mod tls;
mod tui_tmux;
mod verify_edges;
mod verify_pg;
mod verify_sqlite;
